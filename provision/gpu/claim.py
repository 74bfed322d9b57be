"""`vm up` attaching a GPU: only through the lease, and only when nobody else holds it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from provision.errors import AihostError, ConflictError
from provision.gpu.context import GpuContext, Holder
from provision.gpu.lease import LeaseBusy
from provision.gpu.mapping import mapping_exists
from provision.gpu.record import ATTACHING, STARTING, LeaseRecord
from provision.gpu.recovery import lease_key, read_if_mapped, recover
from provision.pve.session import Session


def other_holders(ctx: GpuContext, vmid: int | None, *, live: bool) -> list[Holder]:
    """VMs other than this one whose config refers to the GPU.

    live re-reads the node's VM list and every config (under the lease, the truth another
    process may have changed since this command began); without it the command's first
    read of the node's list is used (a read-only pre-check).
    """
    return ctx.holders(refresh=live, skip=vmid)


def held_error(
    ctx: GpuContext, vm_name: str, holder: Holder, *, exists: bool = True
) -> ConflictError:
    """The exit-4 error naming the holder and the command that moves the GPU (only
    `vm up --take-gpu` for a VM that does not exist yet: a swap needs both VMs)."""
    take = f"`aihost vm up {vm_name} --take-gpu`"
    return ConflictError(
        f"GPU {ctx.name} is held by VM '{holder.name}' ({holder.vmid}, {holder.status})",
        hint=f"move it with `aihost gpu swap {ctx.name} --to {vm_name}` or {take}"
        if exists
        else f"create {vm_name} with the card: {take}",
    )


def check_mapped(session: Session, vm_name: str, vmid: int | None, gpu: str) -> bool:
    """Read-only pre-check before any write: the GPU is free or already this VM's
    (ConflictError otherwise); False when its mapping does not exist yet (nothing to
    check: the lease is the mapping's description, recovery.read_if_mapped). The lease
    is the one this command's recovery check found free, else read now."""
    ctx = GpuContext(session, gpu)
    kept = session.take_read(lease_key(gpu))
    record = kept if isinstance(kept, LeaseRecord) else read_if_mapped(ctx)
    if record is None:
        return False
    if record.busy and not ctx.lease.abandoned(record):
        raise ctx.lease.busy_error(record)
    holders = other_holders(ctx, vmid, live=False)
    if holders:
        raise held_error(ctx, vm_name, holders[0], exists=vmid is not None)
    return True


@contextmanager
def claim_gpus(
    session: Session, vm_name: str, vmid: int, gpus: list[str], *, phase: str = ATTACHING
) -> Iterator[None]:
    """The claim is the lease: take each GPU's lease by compare-and-set, then re-read the
    live configs of every VM on its node under it, then let the body attach (phase
    `attaching`) or start a VM whose config already names the GPUs (phase `starting`: its
    live config must still name each, or a swap took the card away since it was read);
    vmid is recorded as the holder after. A crash between leaves the lease busy in that
    phase, which the next command touching the GPU rolls forward or back (gpu.recovery)."""
    taken: list[tuple[GpuContext, str, int | None, str | None]] = []
    try:
        for gpu in gpus:
            ctx = GpuContext(session, gpu)
            record = _begin(ctx, vm_name, vmid, phase)
            taken.append((ctx, str(record.op), record.holder, record.holder_name))
            holders = other_holders(ctx, vmid, live=True)
            if holders:
                raise held_error(ctx, vm_name, holders[0])
            if phase == STARTING and not ctx.ref.keys_in(ctx.steps.config(vmid)):
                raise ConflictError(
                    f"GPU {gpu} was taken out of VM '{vm_name}' ({vmid}) since this run "
                    "read its config (another operation moved it)",
                    hint=f"see `aihost gpu list`, then re-run `aihost vm up {vm_name}`",
                )
        yield
    except BaseException:
        for ctx, op, holder, holder_name in taken:
            _settle_failed(ctx, op, vmid, vm_name, (holder, holder_name))
        raise
    for ctx, op, _, _ in taken:
        _finish(ctx, op, vmid, vm_name)


def _finish(ctx: GpuContext, op: str, vmid: int, vm_name: str) -> None:
    """Record vmid as the holder once its config names the GPU: retried once (a write
    whose answer was lost may have gone through: the record then shows it)."""
    try:
        ctx.lease.finish(op, vmid, vm_name)
    except AihostError:
        record = ctx.lease.read()
        if record.op != op and record.holder == vmid:
            return
        ctx.lease.finish(op, vmid, vm_name)


def _settle_failed(
    ctx: GpuContext, op: str, vmid: int, vm_name: str, before: tuple[int | None, str | None]
) -> None:
    """End the claim of an attach that failed: a config write whose answer was lost may
    have gone through, so the VM's live config decides the holder. When even that cannot
    be read, the lease stays in phase `attaching` for recovery (this process's end makes
    it abandoned; the next command on the GPU rolls it forward or back)."""
    try:
        attached = bool(ctx.ref.keys_in(ctx.steps.config(vmid)))
        ctx.lease.finish(op, *((vmid, vm_name) if attached else before))
    except AihostError as exc:
        ctx.say(
            f"could not settle the lease of {ctx.name} ({exc}); the next command on "
            f"it, or `aihost gpu recover {ctx.name}`, will"
        )


def _begin(ctx: GpuContext, vm_name: str, vmid: int, phase: str) -> LeaseRecord:
    """Take the lease for an attach or start, recovering an abandoned operation first."""
    try:
        return ctx.lease.begin(phase=phase, target=vmid, target_name=vm_name)
    except LeaseBusy as busy:
        if not ctx.lease.abandoned(busy.record):
            raise
        recover(ctx)
        return ctx.lease.begin(phase=phase, target=vmid, target_name=vm_name)


def forget_holder(session: Session, gpus: list[str], vmid: int) -> None:
    """After VM vmid is gone: each GPU's lease stops naming it as the holder (by
    compare-and-set; a lease naming another VM, or busy with an operation, is left)."""

    def change(current: LeaseRecord) -> LeaseRecord | None:
        if current.busy or current.holder != vmid:
            return None
        return current.with_(holder=None, holder_name=None)

    for gpu in gpus:
        ctx = GpuContext(session, gpu)
        if ctx.gpu.mapping and not mapping_exists(ctx.client, ctx.gpu.mapping):
            continue
        ctx.lease.update(change)
