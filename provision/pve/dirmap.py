"""A cluster directory mapping (/cluster/mapping/dir) as a handle, and the API's version.

pve-manager `PVE/API2/Cluster/Mapping/Dir.pm`: `create` checks the path on the node that
answers; `update` requires `map` (check_config with create set) and keeps keys it is not
sent; one digest covers every directory mapping (mapping/directory.cfg). Directory
mappings and `virtiofsN` exist from PVE 8.4 on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from provision.errors import ApiError
from provision.pve.api import Api

ROOT = "/cluster/mapping/dir"
VIRTIOFS_SINCE = (8, 4)


def pve_version(api: Api) -> tuple[int, int]:
    """(major, minor) of the Proxmox VE the API belongs to (`GET /version`, any user)."""
    data = api.get("/version") or {}
    match = re.match(r"(\d+)\.(\d+)", str(data.get("release") or data.get("version") or ""))
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


@dataclass
class DirMapping:
    """One named directory mapping of the cluster."""

    api: Api
    name: str

    @property
    def path(self) -> str:
        """The mapping's API path."""
        return f"{ROOT}/{self.name}"

    def find(self) -> dict[str, Any] | None:
        """The mapping (map, description, the file's digest), or None when there is none."""
        try:
            return dict(self.api.get(self.path) or {})
        except ApiError as exc:
            if exc.status in (404, 500) and "not found" in exc.message.lower():
                return None
            raise

    def create(self, entries: list[str], description: str) -> None:
        """Create the mapping with these map entries."""
        self.api.post(ROOT, id=self.name, map=entries, description=description)

    def write(self, entries: list[str], digest: str | None) -> None:
        """Update `map` (sent whole, as Proxmox requires), guarded by digest."""
        sent: dict[str, Any] = {"map": entries}
        if digest:
            sent["digest"] = digest
        self.api.put(self.path, **sent)
