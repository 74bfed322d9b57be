"""The VM-level steps a swap is made of: detach, attach, stop, start."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision.errors import ApiError
from provision.inventory.model import Gpu
from provision.pve.node import Node
from provision.pve.pci import GpuRef, free_hostpci_key
from provision.pve.vm import config_gone, start_timeout

# qemu-server's answer for a vmid without a config (PVE::QemuConfig load_config)


@dataclass
class VmGpuSteps:
    """Idempotent VM steps a swap is made of, each one safe to repeat in recovery."""

    node: Node
    progress: Callable[[str], None]

    def config(self, vmid: int) -> dict[str, Any]:
        """Current config (with digest)."""
        return self.node.vm(vmid).config()

    def config_if_any(self, vmid: int) -> dict[str, Any] | None:
        """Current config, or None when the VM no longer exists (removed after a failed
        create, or by the user)."""
        try:
            return self.config(vmid)
        except ApiError as exc:
            if config_gone(exc.message):
                return None
            raise

    def status(self, vmid: int) -> str:
        """running / stopped."""
        return self.node.vm(vmid).state()

    def detach(self, vmid: int, gpu: Gpu) -> bool:
        """Remove gpu's hostpci entries from vmid; False if there were none."""
        vm = self.node.vm(vmid)
        config = vm.config()
        keys = GpuRef.of(gpu).keys_in(config)
        if not keys:
            return False
        self.progress(f"detaching from VM {vmid} ({', '.join(keys)})")
        vm.write(
            {"delete": ",".join(keys)}, digest=config.get("digest"), what=f"configure VM {vmid}"
        )
        return True

    def attach(self, vmid: int, gpu: Gpu, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add gpu to vmid at the first free hostpci slot; the config written ({} if the
        GPU was already there). config: vmid's config as read beforehand (with its digest:
        the write fails if it changed since), else it is read now."""
        vm = self.node.vm(vmid)
        config = config if config is not None else vm.config()
        ref = GpuRef.of(gpu)
        if ref.keys_in(config):
            return {}
        key = free_hostpci_key(config)
        self.progress(f"attaching to VM {vmid} as {key}")
        vm.write({key: ref.hostpci_value}, digest=config.get("digest"), what=f"configure VM {vmid}")
        return {**config, key: ref.hostpci_value}

    def stop(self, vmid: int, *, timeout: float, force: bool) -> bool:
        """Shut vmid down (guest agent or ACPI) within timeout; force: hard stop after it.
        False when it was not running."""
        vm = self.node.vm(vmid)
        if vm.state() != "running":
            return False
        self.progress(
            f"shutting down VM {vmid} (timeout {timeout:.0f} s"
            + (", then forced)" if force else ")")
        )
        vm.shutdown(timeout, force=force, what=f"shut down VM {vmid}")
        return True

    def stop_all(
        self,
        vmids: list[int],
        *,
        timeout: float,
        force: bool,
        meanwhile: Callable[[], None] | None = None,
    ) -> set[int]:
        """Shut several VMs down at once, each as stop does (a swap waits for the longer
        of two shutdowns, not their sum), and run meanwhile in this thread while they
        run. Returns once every shutdown has ended (so a rollback never races one still
        under way), raising the first failure then; the vmids that were shut down."""
        from concurrent.futures import ThreadPoolExecutor, wait

        pool = ThreadPoolExecutor(max_workers=max(1, len(vmids)), thread_name_prefix="stop")
        futures = [pool.submit(self.stop, v, timeout=timeout, force=force) for v in vmids]
        try:
            if meanwhile is not None:
                meanwhile()
            wait(futures)
        except BaseException:  # meanwhile failed, or Ctrl-C: the shutdowns end first
            wait(futures)
            raise
        finally:
            pool.shutdown(wait=False)
        return {vmid for vmid, future in zip(vmids, futures, strict=True) if future.result()}

    def start(self, vmid: int, *, timeout: int, config: dict[str, Any] | None = None) -> None:
        """Start vmid unless it runs; the timeout is never below qemu-server's default for
        the config being started (provision.pve.vm.start_timeout). config: the config the
        caller just wrote to a VM it knows is stopped (nothing is read then)."""
        vm = self.node.vm(vmid)
        if config is None:
            if vm.state() == "running":
                return
            config = vm.config()
        timeout = start_timeout(timeout, config)
        self.progress(f"starting VM {vmid} (timeout {timeout} s)")
        vm.start(timeout, config=config, what=f"start VM {vmid}")

    def settle(
        self,
        vmids: list[int],
        *,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Wait (up to timeout) for the node's running tasks on vmids to end: a start or
        shutdown a killed process began goes on without it, and recovery must see its
        outcome, not race it (GET /nodes/{node}/tasks?source=active&vmid=N)."""
        deadline = clock() + timeout
        for vmid in vmids:
            while self.node.tasks(source="active", vmid=vmid):
                if clock() > deadline:
                    self.progress(f"VM {vmid} still has a running task; going on")
                    return
                sleep(0.1)
