"""Finish or roll back a GPU operation a crashed, killed or interrupted aihost left.

A swap that got as far as starting its target is finished; one that did not is rolled
back (the former holder gets the card back). A `vm up` attach (phase `attaching`) whose
config write went through is finished, as is a `vm up` start (phase `starting`) of a VM
that still names the card, and a swap whose target runs with the card: recovery never
undoes a state a later run converged.
"""

from __future__ import annotations

from contextlib import suppress

from provision.errors import ApiError
from provision.gpu.context import GpuContext
from provision.gpu.lease import LeaseBusy
from provision.gpu.mapping import mapping_exists
from provision.gpu.record import ATTACHING, ROLLING_BACK, STARTING, LeaseRecord


def rollback(ctx: GpuContext, record: LeaseRecord) -> str:
    """Undo an unfinished swap: target loses the GPU, the former holder gets it back.

    A start whose outcome was not seen (its status read failed, or its process died)
    may still be running: its end is waited for first, so a target it starts is stopped
    again instead of keeping the card from the former holder."""
    done = []
    if record.op and record.phase == "started":
        # From here on the target loses the card: a crash during the rollback must be
        # rolled back further, not "finished" onto a target it was taken from.
        record = ctx.lease.advance(record.op, phase=ROLLING_BACK)
    ctx.steps.settle([v for v in (record.target, record.source) if v is not None])
    target = ctx.steps.config_if_any(record.target) if record.target is not None else None
    if record.target is not None and target is not None:
        has_gpu = bool(ctx.ref.keys_in(target))
        if has_gpu and ctx.steps.status(record.target) == "running":
            ctx.steps.stop(record.target, timeout=30, force=True)
            done.append(f"stopped VM {record.target}")
        if ctx.steps.detach(record.target, ctx.gpu):
            done.append(f"detached from VM {record.target}")
    if record.source is not None:
        if ctx.steps.attach(record.source, ctx.gpu):
            done.append(f"re-attached to VM {record.source}")
        if record.source_was_running:
            ctx.steps.start(record.source, timeout=300)
            done.append(f"started VM {record.source} again")
    if record.op:
        # before a swap records its source (planning) or in a `vm up` attach, the holder
        # recorded when the operation began is still the holder
        holder = record.source if record.source is not None else record.holder
        name = record.holder_name if record.holder == holder else None
        ctx.lease.finish(record.op, holder, name)
    return ", ".join(done) or "nothing had changed"


def recover(ctx: GpuContext) -> str | None:
    """Finish or roll back an operation left behind by a crashed aihost; None if none."""
    record = read_if_mapped(ctx)
    if record is None or not record.busy:
        return None
    if not ctx.lease.abandoned(record):
        raise ctx.lease.busy_error(record)
    record = ctx.lease.take_over(record)
    ctx.say(f"recovering operation {record.op} left in phase {record.phase}")
    ctx.steps.settle([v for v in (record.target, record.source) if v is not None])
    if record.target is not None and _target_done(ctx, record):
        ctx.lease.finish(str(record.op), record.target, record.target_name)
        return f"finished: VM {record.target} holds {ctx.name}"
    return "rolled back: " + rollback(ctx, record)


def lease_key(gpu: str) -> tuple[str, str]:
    """The key a GPU's lease read is kept under in the command's session."""
    return ("lease", gpu)


def recover_abandoned(ctx: GpuContext) -> str | None:
    """Recover the GPU's operation if its process is gone (one lease read otherwise; a
    GPU whose mapping does not exist yet has none); what recovery did, or None. A lease
    found free is kept for the command's read-only pre-check (gpu.claim.check_mapped)."""
    record = read_if_mapped(ctx)
    if record is not None and not record.busy:
        ctx.session.keep_read(lease_key(ctx.name), record)
    if record is None or not record.busy or not ctx.lease.abandoned(record):
        return None
    with suppress(LeaseBusy):  # another process may be recovering it right now
        return recover(ctx)
    return None


def read_if_mapped(ctx: GpuContext) -> LeaseRecord | None:
    """The GPU's lease record; None when its mapping does not exist yet (no lease, and no
    VM can name the GPU). A mapping created between the failed read and the question
    whether it exists (another run's map-gpu) has its lease read again."""
    try:
        return ctx.lease.read()
    except ApiError:
        if not ctx.gpu.mapping:
            raise
        if not mapping_exists(ctx.client, ctx.gpu.mapping):
            return None
    return ctx.lease.read()


def _target_done(ctx: GpuContext, record: LeaseRecord) -> bool:
    """True when the operation's target has the GPU and is to keep it (no other VM names
    it): a swap that got as far as starting it (its config still names the card), or
    whose target runs with the card (its start went through, the lease write after it
    did not); a `vm up` attach whose config write went through, or a `vm up` start of a
    VM whose config names the card (a later run may have started the VM since)."""
    if record.phase not in (ATTACHING, STARTING, "attached", "started") or record.target is None:
        return False
    config = ctx.steps.config_if_any(record.target)
    if config is None or not ctx.ref.keys_in(config):
        return False  # e.g. a rollback by an older aihost took it out before it died
    if record.phase == "started":
        return True
    if record.phase == "attached" and ctx.steps.status(record.target) != "running":
        return False
    return not ctx.holders(skip=record.target)
