"""Compare-and-set registers in Proxmox's cluster filesystem, guarded by `digest`.

A PCI mapping's register follows pve-manager `PVE/API2/Cluster/Mapping/PCI.pm` `update`:
it runs pve-common `SectionConfig::check_config($id, $param, 1, 1)`, so every update must
send the mapping's required `map` again (sent back exactly as read; keys not sent, such as
`mdev`, are kept by the update), and `check_value` refuses a line feed in any value, so
the mapping's description holds the lease records on one line.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, Protocol

from provision.errors import ApiError
from provision.pve.api import Api
from provision.pve.mapping import Mapping
from provision.pve.node import Node

DIGEST_MISMATCH = re.compile(
    r"checksum mismatch|digest|file change(?:d)? by other user|modified configuration", re.I
)
# A lease record inside a one-line description (provision.gpu.record: its JSON is flat).
_RECORD = re.compile(r"\s*(aihost-lease [^:\s]+: \{[^{}]*\})\s*")


def one_line(text: str) -> str:
    """Register text (one record per line) as a mapping description: lines joined by a
    space, blank ones dropped (Proxmox refuses a line feed in a mapping's description)."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def from_one_line(description: str) -> str:
    """A mapping description back as register text: each lease record on its own line,
    text before, between or after records (the user's own) on lines of its own."""
    return _RECORD.sub(lambda m: f"\n{m.group(1)}\n", description).strip("\n")


class Register(Protocol):
    """A text value with a digest; write succeeds only if the digest still matches."""

    where: str

    def read(self) -> tuple[str, str | None]: ...
    def write(self, text: str, digest: str | None) -> bool: ...


class _ApiRegister(ABC):
    where: str

    @abstractmethod
    def _get(self) -> dict[str, Any]:
        """The object holding the description, with its digest."""

    @abstractmethod
    def _send(self, params: dict[str, Any], digest: str | None) -> None:
        """Write params guarded by digest."""

    def read(self) -> tuple[str, str | None]:
        """The description text and its digest."""
        data = self._get()
        return str(data.get("description") or ""), data.get("digest")

    def write(self, text: str, digest: str | None) -> bool:
        """Store text if nobody changed the register since digest; False if someone did."""
        params: dict[str, Any] = {"description": text} if text else {"delete": "description"}
        return self._put(params, digest)

    def _put(self, params: dict[str, Any], digest: str | None) -> bool:
        """Write params guarded by digest; False when Proxmox reports a changed file."""
        try:
            self._send(params, digest)
        except ApiError as exc:
            if DIGEST_MISMATCH.search(exc.message):
                return False
            raise
        return True


class MappingRegister(_ApiRegister):
    """The description of a cluster PCI resource mapping (mapped GPUs).

    The digest is the whole mapping/pci.cfg's, so a write also loses when another mapping
    changed (the caller re-reads and retries, see provision.gpu.retry).
    """

    def __init__(self, client: Api, mapping_id: str) -> None:
        self.mapping = Mapping(client, mapping_id)
        self.where = f"the description of PCI mapping '{mapping_id}'"
        self._map: dict[str | None, list[str]] = {}

    @property
    def path(self) -> str:
        """The mapping's API path."""
        return self.mapping.path

    def _get(self) -> dict[str, Any]:
        return self.mapping.read()

    def _send(self, params: dict[str, Any], digest: str | None) -> None:
        entries = params.pop("map")
        self.mapping.write(entries, params, digest)

    def read(self) -> tuple[str, str | None]:
        """The description as register text and the file's digest; the mapping's `map`
        entries are kept to be sent back by the write that uses this digest."""
        data = self._get()
        digest = data.get("digest")
        self._map = {digest: [str(e) for e in data.get("map") or []]}
        return from_one_line(str(data.get("description") or "")), digest

    def write(self, text: str, digest: str | None) -> bool:
        """Store text (on one line) with the `map` read under digest; False on a conflict."""
        if digest not in self._map:
            self.read()
            if digest not in self._map:
                return False  # the mapping changed since digest was read
        line = one_line(text)
        params: dict[str, Any] = {"description": line} if line else {"delete": "description"}
        params["map"] = self._map[digest]
        return self._put(params, digest)


class NodeNotesRegister(_ApiRegister):
    """The notes (description) of a node (raw-address GPUs)."""

    def __init__(self, client: Api, node: str) -> None:
        self.node = Node(client, node)
        self.where = f"the notes of node '{node}'"

    def _get(self) -> dict[str, Any]:
        return self.node.notes()

    def _send(self, params: dict[str, Any], digest: str | None) -> None:
        self.node.set_notes({**params, "digest": digest} if digest else params)
