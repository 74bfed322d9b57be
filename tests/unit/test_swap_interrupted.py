"""A swap whose last lease writes fail, that is interrupted with Ctrl-C, or whose rollback
fails: the target keeps a card it works with, and every failure names `gpu recover`."""

from __future__ import annotations

from typing import Any

import pytest

from provision.errors import ApiError
from provision.gpu.context import Holder
from provision.gpu.lease import GpuLease
from provision.gpu.recovery import recover
from provision.gpu.swap import LeaseUnwritten, SwapFailed, SwapOptions, swap_gpu
from provision.pve.pci import GpuRef
from tests.unit.test_gpu_lease import MemoryRegister
from tests.unit.test_swap import VALUE, FakeContext, FakeVm, two_vms


class Ctx(FakeContext):
    """FakeContext whose holders() leaves out `skip`, as GpuContext's does."""

    def holders(self, *, refresh: bool = True, skip: int | None = None, **_: Any) -> list[Holder]:
        return [h for h in super().holders() if h.vmid != skip]


class FailingAfter(MemoryRegister):
    """Every write fails (HTTP 500) once `when()` is true."""

    def __init__(self, when: Any) -> None:
        super().__init__()
        self.when = when

    def write(self, text: str, digest: str | None) -> bool:
        if self.when():
            raise ApiError("PUT /cluster/mapping/pci/big failed: HTTP 500", status=500)
        return super().write(text, digest)


def test_a_failing_last_lease_write_leaves_the_working_target_the_card(monkeypatch):
    monkeypatch.setattr("provision.gpu.swap.time.sleep", lambda _s: None)
    holder, target = two_vms()
    ctx = Ctx([holder, target])
    ctx.lease = GpuLease(
        FailingAfter(lambda: target.status == "running"),
        "big",
        owner="me@h:1",
        alive=lambda _o: True,
    )
    with pytest.raises(LeaseUnwritten) as unwritten:
        swap_gpu(ctx, "b", SwapOptions(verify=False), clock=lambda: 0.0)
    assert unwritten.value.exit_code == 3
    assert "aihost gpu recover big" in str(unwritten.value.hint)
    assert "VM 101 runs with it" in str(unwritten.value)
    assert target.status == "running" and target.config["hostpci1"] == VALUE
    assert "hostpci0" not in holder.config
    # the owner is gone and the register answers again: recover keeps the target's card
    register = MemoryRegister(ctx.lease.register.text)
    ctx.lease = GpuLease(register, "big", owner="me@h:2", alive=lambda o: o != "me@h:1")
    assert recover(ctx) == "finished: VM 101 holds big"
    assert target.status == "running" and ctx.lease.read().holder == 101


def test_ctrl_c_during_the_targets_start_rolls_back_and_says_so():
    holder, target = two_vms()
    ctx = Ctx([holder, target])

    def interrupted(*_a: Any, **_k: Any) -> None:
        raise KeyboardInterrupt

    target.start = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        swap_gpu(ctx, "b", SwapOptions(verify=False), clock=lambda: 0.0)
    assert any("interrupted while attached; rolled back: " in m for m in ctx.said), ctx.said
    assert holder.config["hostpci0"] == VALUE and holder.status == "running"
    assert not GpuRef(mapping="big").keys_in(target.config)
    assert not ctx.lease.read().busy and ctx.lease.read().holder == 100


def test_ctrl_c_after_the_target_started_finishes_the_swap():
    holder, target = two_vms()
    ctx = Ctx([holder, target])

    def interrupted(_vmid: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        swap_gpu(ctx, "b", SwapOptions(verify=True), clock=lambda: 0.0, verify_gpu=interrupted)
    assert any("interrupted after its start: finished" in m for m in ctx.said), ctx.said
    assert target.status == "running" and ctx.lease.read().holder == 101


def test_a_failed_rollback_names_the_swap_and_gpu_recover():
    holder, target = two_vms(fail_start=True)
    ctx = Ctx([holder, target])
    real_write = FakeVm.write

    def refuse_reattach(self: FakeVm, params: dict[str, Any], **kw: Any) -> None:
        if self is holder and "hostpci0" in params:
            raise ApiError("PUT /nodes/pve1/qemu/100/config failed: HTTP 500", status=500)
        real_write(self, params, **kw)

    holder.write = lambda params, **kw: refuse_reattach(holder, params, **kw)  # type: ignore
    with pytest.raises(SwapFailed) as failed:
        swap_gpu(ctx, "b", SwapOptions(verify=False), clock=lambda: 0.0)
    message = str(failed.value)
    assert "swap of big to b (operation" in message and "the rollback failed too" in message
    assert "aihost gpu recover big" in str(failed.value.hint)
    assert failed.value.exit_code == 3


def test_a_swap_killed_while_planning_keeps_the_recorded_holder():
    holder, target = two_vms()
    ctx = Ctx([holder, target])
    ctx.lease.update(lambda r: r.with_(holder=100, holder_name="a"))
    ctx.lease.begin(phase="planning", target=101, target_name="b")
    ctx.lease = GpuLease(ctx.lease.register, "big", owner="me@h:2", alive=lambda o: o != "me@h:1")
    assert recover(ctx) == "rolled back: nothing had changed"
    record = ctx.lease.read()
    assert (record.busy, record.holder, record.holder_name) == (False, 100, "a")


def _refusing_reattach(holder: FakeVm) -> None:
    """holder's config writes that give it the card back fail (HTTP 500)."""
    real_write = FakeVm.write

    def refuse(params: dict[str, Any], **kw: Any) -> None:
        if "hostpci0" in params:
            raise ApiError("PUT /nodes/pve1/qemu/100/config failed: HTTP 500", status=500)
        real_write(holder, params, **kw)

    holder.write = refuse  # type: ignore[method-assign]


def test_a_rollback_after_a_failed_check_that_dies_is_rolled_back_further():
    holder, target = two_vms()
    ctx = Ctx([holder, target])
    _refusing_reattach(holder)

    def no_gpu(_vmid: int) -> None:
        raise ApiError("nvidia-smi in VM 101 sees no GPU", status=500)

    with pytest.raises(SwapFailed) as failed:
        swap_gpu(ctx, "b", SwapOptions(verify=True), clock=lambda: 0.0, verify_gpu=no_gpu)
    assert "the rollback failed too" in str(failed.value)
    # the target was stopped and lost the card; nobody names it now
    assert not GpuRef(mapping="big").keys_in(target.config) and "hostpci0" not in holder.config
    assert ctx.lease.read().phase == "rolling back"
    # the process is gone and the holder's config answers again: recovery gives it back
    del holder.write
    ctx.lease = GpuLease(ctx.lease.register, "big", owner="me@h:2", alive=lambda o: o != "me@h:1")
    assert recover(ctx) == "rolled back: re-attached to VM 100, started VM 100 again"
    record = ctx.lease.read()
    assert (record.busy, record.holder) == (False, 100)
    assert holder.config["hostpci0"] == VALUE and holder.status == "running"


def test_a_started_swap_whose_target_lost_the_card_is_rolled_back_not_finished():
    holder, target = two_vms()
    ctx = Ctx([holder, target])
    # what an aihost that died in its rollback (before "rolling back" existed) left:
    # phase started, the target already without the card, the holder not yet given it
    del holder.config["hostpci0"]
    holder.status = "stopped"
    ctx.lease.update(lambda r: r.with_(holder=100, holder_name="a"))
    record = ctx.lease.begin(phase="planning", target=101, target_name="b")
    ctx.lease.advance(str(record.op), phase="started", source=100, source_was_running=True)
    ctx.lease = GpuLease(ctx.lease.register, "big", owner="me@h:2", alive=lambda o: o != "me@h:1")
    assert recover(ctx) == "rolled back: re-attached to VM 100, started VM 100 again"
    assert ctx.lease.read().holder == 100 and holder.config["hostpci0"] == VALUE
