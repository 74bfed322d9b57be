"""Move a GPU from its holder to another VM, with rollback, and recover crashed swaps.

Order keeps the invariant "at most one VM config refers to the GPU": the holder is
stopped and detached before the target is attached and started. Each phase is written
to the lease before it is carried out, so a crash at any point is either rolled back
(before the target started) or finished (the target runs with the GPU).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn

from provision.errors import AihostError, ApiError, ConflictError
from provision.gpu.context import GpuContext, Holder
from provision.gpu.lease import LeaseBusy
from provision.gpu.record import LeaseRecord
from provision.gpu.recovery import recover, rollback
from provision.plan.desired import start_timeout_for

SETTLE_ATTEMPTS = 4


@dataclass
class SwapOptions:
    """How a swap behaves."""

    force: bool = False
    shutdown_timeout: float = 120.0
    wait: bool = False
    wait_timeout: float = 600.0
    verify: bool = True
    agent_timeout: float = 600.0


@dataclass
class SwapResult:
    """What a swap did, with the seconds each phase took."""

    gpu: str
    source: str | None
    target: str | None
    outcome: str
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return asdict(self)


class SwapFailed(AihostError):
    """A swap failed and was rolled back; carries the original error's exit code."""

    def __init__(self, message: str, exit_code: int, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class LeaseUnwritten(ApiError):
    """The target runs with the GPU but the lease could not be brought up to date."""


class _Swap:
    """One swap in progress: its lease operation, phase and timings."""

    def __init__(
        self, ctx: GpuContext, op: str, clock: Callable[[], float], started_at: float
    ) -> None:
        self.ctx, self.op, self.clock, self.started_at = ctx, op, clock, started_at
        self.timings: dict[str, float] = {}
        self.phase = "planning"

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Add the seconds the body takes to timings[name]."""
        begun = self.clock()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + self.clock() - begun, 4)

    def enter(self, name: str, **fields: Any) -> None:
        """Record the next phase in the lease before carrying it out."""
        self.phase = name
        with self.step("lease"):
            self.ctx.lease.advance(self.op, phase=name, **fields)

    def result(self, source: Holder | None, target: str | None, outcome: str) -> SwapResult:
        """The result, with the total time."""
        self.timings["total"] = round(self.clock() - self.started_at, 4)
        return SwapResult(
            self.ctx.name, source.name if source else None, target, outcome, self.timings
        )


def swap_gpu(
    ctx: GpuContext,
    target_name: str | None,
    options: SwapOptions,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    verify_gpu: Callable[[int], None] | None = None,
) -> SwapResult:
    """Give the GPU to target_name (None: release it from its holder)."""
    started_at = clock()
    target = ctx.vm_by_name(target_name) if target_name else None
    record = _begin(ctx, target, options, clock, sleep)
    swap = _Swap(ctx, str(record.op), clock, started_at)
    swap.timings["plan"] = round(clock() - started_at, 4)
    try:
        with swap.step("plan"):
            holders = ctx.holders()
        source = _source(ctx, target, holders)
        if target is not None and source is None and len(holders) == 1:
            ctx.lease.finish(swap.op, target.vmid, target.name)
            return SwapResult(ctx.name, None, target.name, "already held")
        config = _stop_and_detach(swap, source, target, options)
        if target is None:
            with swap.step("lease"):
                ctx.lease.finish(swap.op, None, None)
            return swap.result(source, None, "released")
        _attach_and_start(swap, target, options, verify_gpu, config)
    except LeaseUnwritten:
        raise  # the target works and keeps the card; only the record is behind
    except (AihostError, KeyboardInterrupt) as failure:
        if swap.phase == "planning":
            ctx.lease.finish(swap.op, record.holder, record.holder_name)
            raise
        _undo(swap, target.name if target else None, failure)
    return swap.result(source, target.name, "swapped")


def _undo(swap: _Swap, target: str | None, failure: BaseException) -> NoReturn:
    """A failed or interrupted (Ctrl-C) swap: roll back, say so, and raise."""
    ctx = swap.ctx
    what = f"swap of {ctx.name} to {target or '-'} (operation {swap.op})"
    recover_hint = f"run `aihost gpu recover {ctx.name}` to finish or roll it back"
    try:
        record = ctx.lease.read()
        if isinstance(failure, KeyboardInterrupt) and record.phase == "started":
            ctx.lease.finish(swap.op, record.target, record.target_name)
            ctx.say(f"{what} interrupted after its start: finished, {target} holds the GPU")
            raise failure
        rolled = rollback(ctx, record)
    except AihostError as second:
        ctx.say(f"{what}: the rollback failed: {second}")
        raise SwapFailed(
            f"{what} failed while {swap.phase}: {failure}; the rollback failed too: {second}",
            second.exit_code,
            hint=recover_hint,
        ) from failure
    if isinstance(failure, KeyboardInterrupt):
        ctx.say(f"{what} interrupted while {swap.phase}; rolled back: {rolled}")
        raise failure
    raise SwapFailed(
        f"{what} failed while {swap.phase}: {failure}; rolled back: {rolled}",
        failure.exit_code if isinstance(failure, AihostError) else 3,
    ) from failure


def _source(ctx: GpuContext, target: Any, holders: list[Holder]) -> Holder | None:
    """The VM the GPU moves from (None: nobody else holds it); several is a conflict."""
    others = [h for h in holders if target is None or h.vmid != target.vmid]
    if len(others) > 1:
        names = ", ".join(f"{h.name} ({h.vmid})" for h in others)
        raise ConflictError(
            f"GPU {ctx.name} is named by several VMs: {names}",
            hint=f"release it from all but one with `aihost gpu release "
            f"{ctx.name}` after stopping them",
        )
    return others[0] if others else None


def _stop_and_detach(
    swap: _Swap, source: Holder | None, target: Any, options: SwapOptions
) -> dict[str, Any] | None:
    """Stop the holder and the target (at once), then take the GPU out of the holder's
    config. While they shut down, a stopped target's config is read (its digest guards
    the attach); that config, or None to read it again (a shutdown may change it)."""
    ctx = swap.ctx
    swap.enter(
        "stopping",
        source=source.vmid if source else None,
        source_was_running=bool(source and source.status == "running"),
        holder=source.vmid if source else None,
        holder_name=source.name if source else None,
    )
    read: dict[str, Any] = {}

    def prepare() -> None:
        if target is not None:
            read["config"] = ctx.steps.config(target.vmid)

    with swap.step("stop"):
        stopped = ctx.steps.stop_all(
            [vm.vmid for vm in (source, target) if vm is not None],
            timeout=options.shutdown_timeout,
            force=options.force,
            meanwhile=prepare,
        )
    swap.enter("detached")
    with swap.step("config"):
        if source is not None:
            ctx.steps.detach(source.vmid, ctx.gpu)
    return None if target is None or target.vmid in stopped else read.get("config")


def _attach_and_start(
    swap: _Swap,
    target: Any,
    options: SwapOptions,
    verify_gpu: Callable[[int], None] | None,
    config: dict[str, Any] | None,
) -> None:
    """Give the target the GPU, start it, check it, and record it as the holder."""
    ctx = swap.ctx
    swap.enter("attached")
    with swap.step("config"):
        written = ctx.steps.attach(target.vmid, ctx.gpu, config=config)
    with swap.step("start"):
        timeout = _start_timeout(ctx, target.name)
        ctx.steps.start(target.vmid, timeout=timeout, config=written or None)
    _settle(swap, target, lambda: swap.enter("started"), done=lambda r: r.phase == "started")
    if options.verify and verify_gpu is not None:
        with swap.step("verify"):
            verify_gpu(target.vmid)
    with swap.step("lease"):
        _settle(
            swap,
            target,
            lambda: ctx.lease.finish(swap.op, target.vmid, target.name),
            done=lambda r: r.op is None and r.holder == target.vmid,
        )


def _settle(
    swap: _Swap, target: Any, write: Callable[[], object], done: Callable[[LeaseRecord], bool]
) -> None:
    """A lease write once the target works: retried (a write whose answer was lost may
    have gone through: done tells from the record), at worst LeaseUnwritten (exit 3)."""
    ctx = swap.ctx
    last: AihostError | None = None
    for attempt in range(SETTLE_ATTEMPTS):
        if attempt:
            time.sleep(0.2 * attempt)
        try:
            if last is not None and done(ctx.lease.read()):
                return
            write()
            return
        except AihostError as exc:
            last = exc
    raise LeaseUnwritten(
        f"GPU {ctx.name} moved to {target.name} (VM {target.vmid} runs with it), but its "
        f"lease could not be updated: {last}",
        hint=f"run `aihost gpu recover {ctx.name}`: it records {target.name} as the holder",
    )


def _begin(
    ctx: GpuContext,
    target: Any,
    options: SwapOptions,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> LeaseRecord:
    """Take the GPU's lease: recover an abandoned operation first; wait for a live one
    with options.wait, else fail fast (exit 4) naming it."""
    deadline = clock() + options.wait_timeout
    delay = 0.2
    while True:
        try:
            return ctx.lease.begin(
                phase="planning",
                target=target.vmid if target else None,
                target_name=target.name if target else None,
            )
        except LeaseBusy as busy:
            if ctx.lease.abandoned(busy.record):
                with suppress(LeaseBusy):  # another process may be recovering it right now
                    recover(ctx)
                continue
            if not options.wait or clock() >= deadline:
                raise
            ctx.say(f"waiting for operation {busy.record.op} ({busy.record.phase})")
            sleep(delay)
            delay = min(delay * 2, 1.0)


def _start_timeout(ctx: GpuContext, vm_name: str) -> int:
    vm = ctx.session.inv.vms.get(vm_name)
    return start_timeout_for(vm) if vm else 120
