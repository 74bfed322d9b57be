"""`vm up` for one VM or many: bounded workers, per-VM progress, failures kept apart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from provision.delivery.plan import start_snippet_read
from provision.errors import AihostError
from provision.gpu.context import GpuContext
from provision.gpu.recovery import read_if_mapped, recover_abandoned
from provision.preflight import run as preflight_run
from provision.pve.session import Session
from provision.vmops.apply import apply_plan
from provision.vmops.outcome import UpOptions, UpResult
from provision.vmops.planner import VmState, read_state

MAX_WORKERS = 20


@dataclass
class Outcome:
    """One VM's result or its error."""

    vm: str
    result: UpResult | None = None
    error: AihostError | None = None


def share_out(session: Session, names: list[str]) -> dict[str, frozenset[str]]:
    """For VMs brought up together: which GPUs each must leave to another VM of the batch.

    A GPU named by several of them goes to the one that holds it now (keeper), and the
    others defer it.
    """
    wanting: dict[str, list[str]] = {}
    for vm_name in session.inv.vms:  # inventory order
        if vm_name in names:
            for gpu in session.inv.vms[vm_name].gpu_names:
                wanting.setdefault(gpu, []).append(vm_name)
    deferred: dict[str, set[str]] = {name: set() for name in names}
    for gpu, vms in wanting.items():
        if len(vms) < 2:
            continue
        keeper = _keeper(GpuContext(session, gpu), vms)
        for vm_name in vms:
            if vm_name != keeper:
                deferred[vm_name].add(gpu)
    return {name: frozenset(gpus) for name, gpus in deferred.items()}


def _keeper(ctx: GpuContext, vms: list[str]) -> str:
    """Which of vms keeps the GPU: the one whose config names the card now (a running one
    first), else the one its lease records as holder, else the first in inventory order.

    The configs decide before the lease: a card attached by hand, or a lease that no
    longer names its holder, must not move, since the VMs that defer the GPU are planned
    without it, which takes it out of a holder's config. A lease that cannot be read is
    an error here, not "no holder" (its mapping not existing yet is no holder).
    """
    named = [h for h in ctx.holders(refresh=False) if h.name in vms]
    if named:
        return min(named, key=lambda h: (h.status != "running", vms.index(h.name))).name
    record = read_if_mapped(ctx)
    holder = record.holder_name if record is not None else None
    return holder if holder in vms else vms[0]


def plan_vms(session: Session, names: list[str]) -> list[VmState]:
    """Read and plan each VM (read-only); conflicts become notes in the plans."""
    shares = share_out(session, names) if len(names) > 1 else {}
    if len(names) == 1:
        start_snippet_read(session, names[0])
    return [
        read_state(session, name, plan_only=True, defer_gpus=shares.get(name, frozenset()))
        for name in names
    ]


def up_one(
    session: Session, name: str, options: UpOptions, defer_gpus: frozenset[str] = frozenset()
) -> UpResult:
    """Plan and apply one VM (after rolling forward or back an operation a crashed run
    left on its GPUs, so "no changes" never hides one)."""
    for gpu in session.inv.vms[name].gpu_names:
        recover_abandoned(GpuContext(session, gpu))
    state = read_state(
        session,
        name,
        take_gpu=options.take_gpu,
        reprovision=options.reprovision,
        defer_gpus=defer_gpus,
    )
    session.progress(state.plan.to_text())
    if options.preflight and state.plan.changes_anything:
        preflight_run.preflight(session, [state], verify=options.wait, report=session.progress)
    return apply_plan(session, state, options)


def up_many(
    session: Session, names: list[str], options: UpOptions, workers: int = MAX_WORKERS
) -> list[Outcome]:
    """Bring several VMs up concurrently; one failure does not stop the others."""

    shares = share_out(session, names) if len(names) > 1 and not options.take_gpu else {}

    def run(name: str) -> Outcome:
        try:
            deferred = shares.get(name, frozenset())
            return Outcome(name, result=up_one(session, name, options, deferred))
        except AihostError as exc:
            if len(names) > 1:
                session.progress(f"{name}: failed: {exc}")
            return Outcome(name, error=exc)

    if len(names) == 1:
        # its SSH reads overlap its first API reads (for one VM only: many VMs at once would
        # open as many SSH connections together, beyond sshd's MaxStartups)
        start_snippet_read(session, names[0])
        return [run(names[0])]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
        return list(pool.map(run, names))
