"""The VM-level steps a swap is made of: detach, attach, stop, start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision.inventory.model import Gpu
from provision.pve.pci import GpuRef, free_hostpci_key


@dataclass
class VmGpuSteps:
    """Idempotent VM steps a swap is made of, each one safe to repeat in recovery."""

    client: Any
    node: str
    wait_task: Callable[..., Any]
    progress: Callable[[str], None]

    def _base(self, vmid: int) -> str:
        return f"/nodes/{self.node}/qemu/{vmid}"

    def config(self, vmid: int) -> dict[str, Any]:
        """Current config (with digest)."""
        return dict(self.client.get(f"{self._base(vmid)}/config"))

    def status(self, vmid: int) -> str:
        """running / stopped."""
        return str(self.client.get(f"{self._base(vmid)}/status/current").get("status"))

    def detach(self, vmid: int, gpu: Gpu) -> bool:
        """Remove gpu's hostpci entries from vmid; False if there were none."""
        config = self.config(vmid)
        keys = GpuRef.of(gpu).keys_in(config)
        if not keys:
            return False
        self.progress(f"detaching from VM {vmid} ({', '.join(keys)})")
        self._write(vmid, {"delete": ",".join(keys), "digest": config.get("digest")})
        return True

    def attach(self, vmid: int, gpu: Gpu) -> bool:
        """Add gpu to vmid at the first free hostpci slot; False if already there."""
        config = self.config(vmid)
        if GpuRef.of(gpu).keys_in(config):
            return False
        key = free_hostpci_key(config)
        self.progress(f"attaching to VM {vmid} as {key}")
        self._write(vmid, {key: GpuRef.of(gpu).hostpci_value, "digest": config.get("digest")})
        return True

    def _write(self, vmid: int, params: dict[str, Any]) -> None:
        params = {k: v for k, v in params.items() if v is not None}
        upid = self.client.post(f"{self._base(vmid)}/config", **params)
        if upid:
            self.wait_task(self.client, upid, timeout=300, what=f"configure VM {vmid}")

    def stop(self, vmid: int, *, timeout: float, force: bool) -> None:
        """Shut vmid down (guest agent or ACPI) within timeout; force: hard stop after it."""
        if self.status(vmid) != "running":
            return
        self.progress(f"shutting down VM {vmid} (timeout {timeout:.0f} s"
                      + (", then forced)" if force else ")"))
        params: dict[str, Any] = {"timeout": int(timeout)}
        if force:
            params["forceStop"] = 1
        upid = self.client.post(f"{self._base(vmid)}/status/shutdown", **params)
        self.wait_task(self.client, upid, timeout=timeout + 60, what=f"shut down VM {vmid}")

    def start(self, vmid: int, *, timeout: int) -> None:
        """Start vmid unless it runs; the timeout is never below qemu-server's default for
        the config being started (`config_aware_timeout`: x4 with a GPU attached)."""
        from provision.pve.vmconfig import config_aware_timeout

        if self.status(vmid) == "running":
            return
        timeout = max(timeout, config_aware_timeout(self.config(vmid)))
        self.progress(f"starting VM {vmid} (timeout {timeout} s)")
        upid = self.client.post(f"{self._base(vmid)}/status/start", timeout=timeout)
        self.wait_task(self.client, upid, timeout=timeout + 60, what=f"start VM {vmid}")
