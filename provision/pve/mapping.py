"""A cluster PCI resource mapping as a handle: read with digest, write sending `map` back.

pve-manager `PVE/API2/Cluster/Mapping/PCI.pm` `update` requires `map` and keeps keys it
is not sent (such as the description holding a GPU's lease). Every mapping lives in one
file, mapping/pci.cfg, and one digest covers all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.errors import ApiError
from provision.pve.api import Api

ROOT = "/cluster/mapping/pci"


def all_mappings(api: Api) -> list[dict[str, Any]]:
    """Every PCI mapping the caller may see (id, map, description…)."""
    return list(api.get(ROOT) or [])


@dataclass
class Mapping:
    """One named PCI mapping of the cluster."""

    api: Api
    name: str

    @property
    def path(self) -> str:
        """The mapping's API path."""
        return f"{ROOT}/{self.name}"

    def read(self) -> dict[str, Any]:
        """The mapping: map entries, description, and the file's digest."""
        return dict(self.api.get(self.path) or {})

    def find(self) -> dict[str, Any] | None:
        """The mapping, or None when the cluster has none of that name."""
        try:
            return self.read()
        except ApiError as exc:
            if exc.status in (404, 500) and "not found" in exc.message.lower():
                return None
            raise

    def create(self, entries: list[str]) -> None:
        """Create the mapping with these map entries."""
        self.api.post(ROOT, id=self.name, map=entries)

    def write(self, entries: list[str], params: dict[str, Any], digest: str | None) -> None:
        """Update: `map` (always sent, as Proxmox requires) and params, guarded by digest."""
        sent = {**params, "map": entries}
        if digest:
            sent["digest"] = digest
        self.api.put(self.path, **sent)
