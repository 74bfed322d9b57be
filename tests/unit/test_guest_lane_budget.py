"""The guest lane's time budget (tests/guest_lane/conftest.py): a lane test that overruns
fails with its guests' serial consoles and the lane goes on with the next test, instead of
.ci/run's `timeout` killing pytest with everything after lost. Run for real: pytest in a
subprocess over the lane's own conftest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LANE = Path(__file__).resolve().parents[1] / "guest_lane"
ROOT = LANE.parents[1]

TESTS = """
import time
import pytest

pytestmark = [pytest.mark.guest]

def test_a_guest_that_hangs(tmp_path):
    (tmp_path / "vm").mkdir()
    (tmp_path / "vm" / "vm-serial.log.0").write_text("boot\\nthe last line the guest wrote\\n")
    time.sleep(30)

def test_the_next_one_still_runs():
    pass
"""


def _lane_run(tmp_path: Path, **budgets: str) -> subprocess.CompletedProcess[str]:
    """pytest over two guest-marked tests with the lane's conftest and these budgets."""
    shutil.copy(LANE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_lane_budget.py").write_text(TESTS)
    env = {
        **os.environ,
        **budgets,
        "AIHOST_GUEST_LANE": "1",
        "PYTHONPATH": os.pathsep.join([str(LANE), str(ROOT / "tests"), str(ROOT)]),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_overrunning_lane_test_fails_with_its_serial_console_and_the_next_runs(
    tmp_path: Path,
) -> None:
    run = _lane_run(tmp_path, AIHOST_GUEST_LANE_BUDGET="100", AIHOST_GUEST_TEST_BUDGET="2")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout, run.stdout
    assert "LaneTimeout: test_a_guest_that_hangs ran out of its 2 s budget" in run.stdout
    assert "the last line the guest wrote" in run.stdout


def test_no_budget_left_fails_the_test_at_once(tmp_path: Path) -> None:
    run = _lane_run(tmp_path, AIHOST_GUEST_LANE_BUDGET="0")
    assert "2 errors" in run.stdout, run.stdout  # in set-up: neither test ran
    assert "budget is spent before this test" in run.stdout
