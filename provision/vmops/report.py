"""What `vm up` reports: the per-VM text, the JSON document, and the one error for a fleet."""

from __future__ import annotations

from typing import Any

from provision.errors import AihostError
from provision.vmops.fleet import Outcome
from provision.vmops.outcome import UpResult


def _result_lines(result: UpResult) -> list[str]:
    """The lines of one VM that came up (or converged)."""
    done = ", ".join(result.applied)
    lines = [
        f"{result.vm}: no changes"
        if not result.plan.changes_anything
        else f"{result.vm}: done ({done})"
    ]
    if result.report and result.report.gpus:
        gpu = result.report.gpus[0]
        lines.append(f"  GPU: {gpu.name}, {gpu.memory}, driver {gpu.driver}")
    if result.report and result.report.models:
        lines.append(f"  models: {', '.join(result.report.models)}")
    lines.extend(f"  warning: {w}" for w in result.warnings)
    lines.extend(f"  note: {n}" for n in result.plan.notes)
    if result.access is not None:
        access = result.access
        lines.append(f"  address: {access.address or 'unknown (no guest agent answer)'}")
        if access.endpoint:
            lines.append(f"  LLM endpoint: {access.endpoint}")
        lines.append(f"  way in: {access.way_in}")
    return lines


def up_text(outcomes: list[Outcome]) -> str:
    """The text report of `vm up`: each VM's result, or FAILED with its error."""
    lines: list[str] = []
    for outcome in outcomes:
        if outcome.result is None:
            lines.append(f"{outcome.vm}: FAILED: {outcome.error}")
        else:
            lines.extend(_result_lines(outcome.result))
    return "\n".join(lines)


def up_json(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """The JSON report of `vm up`: each VM's result, or its error and exit code."""
    return [
        o.result.to_json()
        if o.result
        else {"vm": o.vm, "error": str(o.error), "exit_code": o.error.exit_code if o.error else 1}
        for o in outcomes
    ]


def up_error(outcomes: list[Outcome]) -> AihostError | None:
    """The error `vm up` ends with: None when all came up, a single VM's own error, else
    one naming the failed VMs with the most severe of their exit codes."""
    failed = [o.error for o in outcomes if o.error is not None]
    if not failed:
        return None
    if len(outcomes) == 1:
        return failed[0]
    error = AihostError(
        f"{len(failed)} of {len(outcomes)} VMs failed: "
        + ", ".join(o.vm for o in outcomes if o.error is not None)
    )
    error.exit_code = max(e.exit_code for e in failed)
    return error
