"""Compare-and-set registers in Proxmox's cluster filesystem, guarded by `digest`."""

from __future__ import annotations

import re
from typing import Any, Protocol

from provision.errors import ApiError

DIGEST_MISMATCH = re.compile(
    r"checksum mismatch|digest|file change(?:d)? by other user|modified configuration", re.I
)


class Register(Protocol):
    """A text value with a digest; write succeeds only if the digest still matches."""

    where: str

    def read(self) -> tuple[str, str | None]: ...
    def write(self, text: str, digest: str | None) -> bool: ...


class _ApiRegister:
    path: str
    where: str

    def __init__(self, client: Any) -> None:
        self.client = client

    def read(self) -> tuple[str, str | None]:
        """The description text and its digest."""
        data = self.client.get(self.path) or {}
        return str(data.get("description") or ""), data.get("digest")

    def write(self, text: str, digest: str | None) -> bool:
        """Store text if nobody changed the register since digest; False if someone did."""
        params: dict[str, Any] = {"description": text} if text else {"delete": "description"}
        if digest:
            params["digest"] = digest
        try:
            self.client.put(self.path, **params)
        except ApiError as exc:
            if DIGEST_MISMATCH.search(exc.message):
                return False
            raise
        return True


class MappingRegister(_ApiRegister):
    """The description of a cluster PCI resource mapping (mapped GPUs)."""

    def __init__(self, client: Any, mapping_id: str) -> None:
        super().__init__(client)
        self.path = f"/cluster/mapping/pci/{mapping_id}"
        self.where = f"the description of PCI mapping '{mapping_id}'"


class NodeNotesRegister(_ApiRegister):
    """The notes (description) of a node (raw-address GPUs)."""

    def __init__(self, client: Any, node: str) -> None:
        super().__init__(client)
        self.path = f"/nodes/{node}/config"
        self.where = f"the notes of node '{node}'"
