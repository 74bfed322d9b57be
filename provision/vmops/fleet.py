"""`vm up` for one VM or many: bounded workers, per-VM progress, failures kept apart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from provision.errors import AihostError
from provision.vmops.apply import UpOptions, UpResult, apply_plan
from provision.vmops.planner import VmState, read_state
from provision.vmops.session import Session

MAX_WORKERS = 20


@dataclass
class Outcome:
    """One VM's result or its error."""

    vm: str
    result: UpResult | None = None
    error: AihostError | None = None


def plan_vms(session: Session, names: list[str]) -> list[VmState]:
    """Read and plan each VM (read-only)."""
    return [read_state(session, name) for name in names]


def up_one(session: Session, name: str, options: UpOptions) -> UpResult:
    """Plan and apply one VM."""
    state = read_state(session, name, take_gpu=options.take_gpu,
                       reprovision=options.reprovision)
    session.progress(state.plan.to_text())
    if options.preflight and state.plan.changes_anything:
        from provision.preflight.run import preflight

        preflight(session, [state], verify=options.wait, report=session.progress)
    return apply_plan(session, state, options)


def up_many(session: Session, names: list[str], options: UpOptions,
            workers: int = MAX_WORKERS) -> list[Outcome]:
    """Bring several VMs up concurrently; one failure does not stop the others."""

    def run(name: str) -> Outcome:
        try:
            return Outcome(name, result=up_one(session, name, options))
        except AihostError as exc:
            if len(names) > 1:
                session.progress(f"{name}: failed: {exc}")
            return Outcome(name, error=exc)

    if len(names) == 1:
        return [run(names[0])]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
        return list(pool.map(run, names))
