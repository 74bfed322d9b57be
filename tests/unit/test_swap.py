"""`gpu swap` on plain data: the real swap, lease and VM steps over a fake handle layer
(VMs as dicts in memory, no HTTP), so each phase and each rollback is checked exactly."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from provision.errors import TaskFailed
from provision.gpu.context import Holder
from provision.gpu.devices import VmGpuSteps
from provision.gpu.lease import GpuLease
from provision.gpu.swap import SwapFailed, SwapOptions, recover, swap_gpu
from provision.pve.pci import GpuRef
from tests.unit.test_gpu_lease import MemoryRegister

GPU = SimpleNamespace(mapping="big", pci=None)
VALUE = "mapping=big,pcie=1"


@dataclass
class FakeVm:
    """A VM handle: its config and power state in memory; `fail_start` makes start fail."""

    vmid: int
    name: str
    config: dict[str, Any]
    status: str = "stopped"
    fail_start: bool = False
    log: list[str] = field(default_factory=list)

    def read(self) -> dict[str, Any]:
        return {**self.config, "digest": str(hash(tuple(sorted(self.config.items()))))}

    def state(self) -> str:
        return self.status

    def write(self, params: dict[str, Any], *, digest: str | None, what: str) -> None:
        assert digest == self.read()["digest"]
        for key in str(params.pop("delete", "")).split(","):
            self.config.pop(key, None)
        self.config.update(params)
        self.log.append(f"write {sorted(params) or 'delete'}")

    def shutdown(self, timeout: float, *, force: bool, what: str) -> None:
        self.status = "stopped"
        self.log.append("shutdown")

    def start(self, timeout: int, *, config: dict[str, Any], what: str) -> None:
        if self.fail_start:
            raise TaskFailed(
                "start failed: PCI device busy", upid="u", exitstatus="err", log_tail=[]
            )
        self.status = "running"
        self.log.append("start")


class FakeVmHandle:
    """What VmGpuSteps calls on provision.pve.vm.Vm, answered by a FakeVm."""

    def __init__(self, vm: FakeVm) -> None:
        self.vm = vm

    def config(self) -> dict[str, Any]:
        return self.vm.read()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.vm, name)


class FakeNode:
    """provision.pve.node.Node's vm(vmid), over the FakeVms."""

    def __init__(self, vms: list[FakeVm]) -> None:
        self.vms = {vm.vmid: vm for vm in vms}

    def vm(self, vmid: int) -> FakeVmHandle:
        return FakeVmHandle(self.vms[vmid])

    def tasks(self, **_filters: Any) -> list[dict[str, Any]]:
        return []  # no task outlives a call here


class FakeContext:
    """GpuContext's surface as swap_gpu uses it: the GPU, its lease, its VM steps."""

    def __init__(self, vms: list[FakeVm]) -> None:
        self.name, self.gpu, self.ref = "big", GPU, GpuRef(mapping="big")
        self.node = FakeNode(vms)
        self.steps = VmGpuSteps(self.node, lambda _m: None)
        self.lease = GpuLease(MemoryRegister(), "big", owner="me@h:1", alive=lambda _o: True)
        self.session = SimpleNamespace(inv=SimpleNamespace(vms={}))
        self.said: list[str] = []

    def say(self, message: str) -> None:
        self.said.append(message)

    def holders(self, **_: Any) -> list[Holder]:
        return [
            Holder(v.vmid, v.name, v.status, tuple(self.ref.keys_in(v.config)))
            for v in self.node.vms.values()
            if self.ref.keys_in(v.config)
        ]

    def vm_by_name(self, name: str) -> Any:
        return next(v for v in self.node.vms.values() if v.name == name)


def two_vms(*, holder_running: bool = True, fail_start: bool = False) -> tuple[FakeVm, FakeVm]:
    holder = FakeVm(
        100, "a", {"hostpci0": VALUE, "net0": "virtio"}, "running" if holder_running else "stopped"
    )
    target = FakeVm(101, "b", {"hostpci0": "0000:05:00"}, fail_start=fail_start)
    return holder, target


def test_a_swap_stops_detaches_attaches_and_starts_in_that_order():
    holder, target = two_vms()
    ctx = FakeContext([holder, target])
    result = swap_gpu(ctx, "b", SwapOptions(verify=False), clock=lambda: 0.0)
    assert (result.source, result.target, result.outcome) == ("a", "b", "swapped")
    assert holder.log == ["shutdown", "write delete"] and "hostpci0" not in holder.config
    assert target.config["hostpci1"] == VALUE  # hostpci0 is a hand-added device: kept
    assert target.log == ["write ['hostpci1']", "start"] and target.status == "running"
    record = ctx.lease.read()
    assert (record.holder, record.holder_name, record.busy) == (101, "b", False)


def test_a_failed_start_is_rolled_back_and_the_holder_runs_again():
    holder, target = two_vms(fail_start=True)
    ctx = FakeContext([holder, target])
    with pytest.raises(SwapFailed) as failed:
        swap_gpu(ctx, "b", SwapOptions(verify=False), clock=lambda: 0.0)
    assert "failed while attached" in str(failed.value)
    assert "re-attached to VM 100, started VM 100 again" in str(failed.value)
    assert holder.config["hostpci0"] == VALUE and holder.status == "running"
    assert not GpuRef(mapping="big").keys_in(target.config)
    record = ctx.lease.read()
    assert (record.holder, record.busy) == (100, False)


def test_a_stopped_holder_is_not_started_by_the_rollback():
    holder, target = two_vms(holder_running=False, fail_start=True)
    ctx = FakeContext([holder, target])
    with pytest.raises(SwapFailed):
        swap_gpu(ctx, "b", SwapOptions(verify=False), clock=lambda: 0.0)
    assert holder.status == "stopped" and "start" not in holder.log


def test_release_takes_the_gpu_from_its_holder():
    holder, target = two_vms()
    ctx = FakeContext([holder, target])
    result = swap_gpu(ctx, None, SwapOptions(), clock=lambda: 0.0)
    assert (result.source, result.outcome) == ("a", "released")
    assert "hostpci0" not in holder.config and ctx.lease.read().holder is None


def test_a_gpu_the_target_already_holds_is_left_alone():
    holder, target = two_vms()
    ctx = FakeContext([holder, target])
    assert swap_gpu(ctx, "a", SwapOptions(), clock=lambda: 0.0).outcome == "already held"
    assert holder.log == []


def test_a_swap_killed_after_the_detach_is_rolled_back_by_recover():
    holder, target = two_vms()
    ctx = FakeContext([holder, target])
    record = ctx.lease.begin(phase="planning", target=101, target_name="b")
    ctx.lease.advance(
        str(record.op),
        phase="detached",
        source=100,
        source_was_running=True,
        holder=100,
        holder_name="a",
    )
    holder.config.pop("hostpci0")
    holder.status = "stopped"
    ctx.lease = GpuLease(ctx.lease.register, "big", owner="me@h:2", alive=lambda o: o != "me@h:1")
    assert recover(ctx) == "rolled back: re-attached to VM 100, started VM 100 again"
    assert holder.config["hostpci0"] == VALUE and holder.status == "running"


class MeetingVm(FakeVm):
    """A FakeVm whose shutdown waits (bounded) until the other VM's shutdown is under way
    too: it only goes through when both run at the same time."""

    meeting: threading.Barrier = threading.Barrier(2)

    def shutdown(self, timeout: float, *, force: bool, what: str) -> None:
        self.meeting.wait(timeout=5)
        if self.fail_start:  # reused here: this VM's shutdown fails after the meeting
            raise TaskFailed("shutdown failed", upid="u", exitstatus="err", log_tail=[])
        super().shutdown(timeout, force=force, what=what)


def test_the_holder_and_a_running_target_shut_down_at_once():
    MeetingVm.meeting = threading.Barrier(2)
    holder = MeetingVm(100, "a", {"hostpci0": VALUE}, "running")
    target = MeetingVm(101, "b", {}, "running")
    ctx = FakeContext([holder, target])
    result = swap_gpu(ctx, "b", SwapOptions(verify=False), clock=lambda: 0.0)
    assert result.outcome == "swapped"
    assert holder.log == ["shutdown", "write delete"] and holder.status == "stopped"
    assert target.log == ["shutdown", "write ['hostpci0']", "start"]


def test_a_failed_shutdown_is_raised_once_the_other_one_ended():
    MeetingVm.meeting = threading.Barrier(2)
    holder = MeetingVm(100, "a", {"hostpci0": VALUE}, "running")
    target = MeetingVm(101, "b", {}, "running", fail_start=True)
    ctx = FakeContext([holder, target])
    with pytest.raises(TaskFailed, match="shutdown failed"):
        ctx.steps.stop_all([100, 101], timeout=30, force=False)
    assert holder.status == "stopped" and holder.log == ["shutdown"]


class CountingVm(FakeVm):
    """A FakeVm that counts reads of its config and power state."""

    reads: int = 0

    def read(self) -> dict[str, Any]:
        self.reads += 1
        return super().read()

    def state(self) -> str:
        self.reads += 1
        return super().state()


def test_the_target_is_prepared_while_the_holder_shuts_down():
    # the holder's shutdown waits (bounded) for the swap to read the stopped target's
    # config; afterwards the target is attached and started from what was read then,
    # without reading it again
    target = CountingVm(101, "b", {})

    class SlowHolder(FakeVm):
        def shutdown(self, timeout: float, *, force: bool, what: str) -> None:
            for _ in range(500):
                if target.reads >= 2:
                    break
                time.sleep(0.01)
            self.seen = target.reads
            super().shutdown(timeout, force=force, what=what)

    holder = SlowHolder(100, "a", {"hostpci0": VALUE}, "running")
    ctx = FakeContext([holder, target])
    assert swap_gpu(ctx, "b", SwapOptions(verify=False), clock=lambda: 0.0).outcome == "swapped"
    assert holder.seen == 2  # the target's power state, then its config
    # one more read: the fake's own digest check in write (Proxmox's side of it)
    assert target.reads == 3 and target.log == ["write ['hostpci0']", "start"]
