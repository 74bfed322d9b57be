"""vmops/report.py: what `vm up` prints and which error it ends with, on plain data."""

from __future__ import annotations

from provision.errors import ConflictError, InputError
from provision.plan.model import Plan
from provision.vmops.fleet import Outcome
from provision.vmops.outcome import UpResult
from provision.vmops.report import up_error, up_json, up_text


def _unchanged(vm: str) -> Outcome:
    plan = Plan(vm=vm, node="pve1", vmid=100, exists=True, notes=["a note"])
    return Outcome(vm, result=UpResult(vm=vm, plan=plan, vmid=100, warnings=["a warning"]))


def test_one_line_per_vm_then_its_warnings_and_notes():
    failed = Outcome("b", error=InputError("bad"))
    assert up_text([_unchanged("a"), failed]) == (
        "a: no changes\n  warning: a warning\n  note: a note\nb: FAILED: bad"
    )
    assert up_json([_unchanged("a"), failed])[1] == {"vm": "b", "error": "bad", "exit_code": 2}
    assert up_json([_unchanged("a")])[0]["vmid"] == 100


def test_no_error_when_all_came_up_and_a_single_vms_own_error_alone():
    assert up_error([_unchanged("a"), _unchanged("b")]) is None
    own = InputError("bad")
    assert up_error([Outcome("a", error=own)]) is own


def test_a_fleet_error_names_the_failed_vms_with_the_most_severe_exit_code():
    outcomes = [
        Outcome("a", error=InputError("bad")),
        _unchanged("b"),
        Outcome("c", error=ConflictError("held")),
    ]
    error = up_error(outcomes)
    assert error is not None
    assert str(error).startswith("2 of 3 VMs failed: a, c")
    assert error.exit_code == max(InputError.exit_code, ConflictError.exit_code)
