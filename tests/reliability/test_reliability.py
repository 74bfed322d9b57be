"""The reliability harness in CI: at least 200 trials, and the checker itself."""

from __future__ import annotations

import time

import pytest

from .lab import GPU, check, start_labs
from .trials import run_many, run_trial

FIRST_SEED = 1000
TRIALS = 200
BUDGET = 230.0  # seconds; the test fails when fewer than TRIALS fit


LABS = 3


@pytest.fixture(scope="module")
def labs():
    made = start_labs(LABS)
    yield made
    for lab in made:
        lab.close()


@pytest.fixture
def lab(labs):
    return labs[0]


@pytest.mark.slow
def test_200_trials_of_kills_faults_and_races_break_no_invariant(labs, capsys):
    started = time.monotonic()
    summary = run_many(labs, FIRST_SEED, TRIALS, BUDGET)
    with capsys.disabled():
        print(
            f"\nreliability: {summary.text()} in {time.monotonic() - started:.0f} s "
            f"(seeds from {FIRST_SEED}; repeat one: python -m tests.reliability --seed N "
            f"--trials 1)"
        )
    assert sum(summary.trials.values()) >= TRIALS, summary.text()
    assert not summary.broken, summary.text()


@pytest.mark.slow
def test_the_checker_sees_two_holders_an_untagged_vm_and_a_stale_lease(lab):
    world = lab.worlds["held"]
    assert check(world) == []
    broken = {
        **world,
        "vms": {k: {**v, "config": dict(v["config"])} for k, v in world["vms"].items()},
    }
    holder = next(v for v in broken["vms"].values() if "hostpci0" in v["config"])
    other = next(
        v
        for v in broken["vms"].values()
        if v is not holder and "hostpci0" not in v["config"] and v["config"].get("template") != "1"
    )
    other["config"]["hostpci0"] = holder["config"]["hostpci0"]
    other["config"]["tags"] = ""
    other["config"]["lock"] = "clone"
    found = " | ".join(check(broken))
    assert f"GPU {GPU} is named by 2 VM configs" in found
    assert f"GPU {GPU} is in 2 running VMs" in found
    assert "is not tagged aihost" in found and "left locked (clone)" in found


@pytest.mark.slow
def test_a_trial_is_repeatable_from_its_seed(lab):
    first, again = run_trial(lab, 7, "fault"), run_trial(lab, 7, "fault")
    assert first.what == again.what and first.what.startswith(("up", "up-all", "swap", "take"))
