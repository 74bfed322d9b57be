"""A node and its storages as handles: VM list, hardware, notes, tasks, volumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.pve.api import Api, Progress
from provision.pve.tasks import TaskResult, wait_task
from provision.pve.vm import Vm, _quiet


@dataclass
class Node:
    """One cluster node; requests go through api."""

    api: Api
    name: str
    progress: Progress = _quiet

    @property
    def path(self) -> str:
        """The node's API path."""
        return f"/nodes/{self.name}"

    def vm(self, vmid: int) -> Vm:
        """The handle of VM vmid on this node."""
        return Vm(self.api, self.name, int(vmid), progress=self.progress)

    def vms(self) -> list[dict[str, Any]]:
        """The node's VMs, live (GET /nodes/{node}/qemu: qemu-server `vmstatus`)."""
        return list(self.api.get(f"{self.path}/qemu") or [])

    def create_vm(self, **params: Any) -> Any:
        """Start creating a VM (POST /nodes/{node}/qemu); the task's UPID."""
        return self.api.post(f"{self.path}/qemu", **params)

    def pci(self) -> list[dict[str, Any]]:
        """The node's PCI hardware listing."""
        return list(self.api.get(f"{self.path}/hardware/pci") or [])

    def notes(self) -> dict[str, Any]:
        """The node's config: its notes (`description`) and their `digest`."""
        return dict(self.api.get(f"{self.path}/config") or {})

    def set_notes(self, params: dict[str, Any]) -> None:
        """Write the node's config (description or delete, digest)."""
        self.api.put(f"{self.path}/config", **params)

    def tasks(self, **filters: Any) -> list[dict[str, Any]]:
        """The node's task list (vmid, typefilter, source, since…)."""
        return list(self.api.get(f"{self.path}/tasks", **filters) or [])

    def storages(self, **params: Any) -> list[dict[str, Any]]:
        """The storages the node lists for the caller (GET /nodes/{node}/storage)."""
        return list(self.api.get(f"{self.path}/storage", **params) or [])

    def storage(self, name: str) -> Storage:
        """The handle of one storage on this node."""
        return Storage(self, name)


@dataclass
class Storage:
    """One storage as a node sees it."""

    node: Node
    name: str

    @property
    def path(self) -> str:
        """The storage's API path on its node."""
        return f"{self.node.path}/storage/{self.name}"

    def content(self, content: str) -> list[dict[str, Any]]:
        """Volumes of one content type (iso, snippets, images…)."""
        return list(self.node.api.get(f"{self.path}/content", content=content) or [])

    def upload(self, content: str, filename: str, data: bytes, *, what: str) -> TaskResult:
        """Upload a file (multipart) and wait for Proxmox's copy task."""
        upid = self.node.api.upload(
            f"{self.path}/upload", content=content, filename=filename, data=data
        )
        return wait_task(self.node.api, upid, timeout=300, what=what)

    def delete(self, volume: str) -> TaskResult:
        """Remove a volume (STORAGE:TYPE/NAME) and wait for it."""
        upid = self.node.api.delete(f"{self.path}/content/{volume}")
        return wait_task(self.node.api, upid, timeout=120, what=f"remove {volume}")
