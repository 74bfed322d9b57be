"""The real guest lane runs only with AIHOST_GUEST_LANE=1 (.ci/run's second pytest run,
`-m guest`): it boots QEMU guests for minutes, the fast suite must not.

Each of its tests runs under a time budget: the lane's own (AIHOST_GUEST_LANE_BUDGET
seconds from the session's start, below .ci/run's 30-minute cap) and one per test
(AIHOST_GUEST_TEST_BUDGET; a test takes 1-4 minutes under TCG). A test
that overruns fails with the tail of its guests' serial consoles, so the lane's next tests
still run and the log says where the time went, instead of `timeout` killing pytest with
every later line lost."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from aihost_testing import schema_validator
from lane import TCG, Lane, build_image, missing_tools

from provision.sim import qemu_bridge

LANE_START = time.monotonic()
LANE_BUDGET = float(os.environ.get("AIHOST_GUEST_LANE_BUDGET", "1680"))
TEST_BUDGET = float(os.environ.get("AIHOST_GUEST_TEST_BUDGET", "600" if TCG else "300"))
SERIAL_TAIL = 3000  # characters of each serial console in a timeout's message


class LaneTimeout(Exception):
    """A guest lane test used up its time budget."""


def pytest_configure(config: pytest.Config) -> None:
    """Line-buffered output: the lane's timings show as they happen under `-s`, not lost in
    a buffer when something kills the run."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the lane's tests unless AIHOST_GUEST_LANE=1."""
    if os.environ.get("AIHOST_GUEST_LANE") == "1":
        return
    skip = pytest.mark.skip(reason="the real guest lane: set AIHOST_GUEST_LANE=1 (.ci/run does)")
    for item in items:
        if "guest" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def image() -> Path:
    """The cached guest image (built on the first use)."""
    missing = missing_tools()
    if missing:
        pytest.fail(f"the guest lane needs {', '.join(missing)} (.ci/run installs them)")
    start = time.monotonic()
    path = build_image()
    print(
        f"\nguest lane: image ready in {time.monotonic() - start:.0f} s ({path}, "
        f"{'TCG' if TCG else 'KVM'})"
    )
    return path


def serial_tails(workdir: Path) -> str:
    """The end of every serial console log a test's guests wrote under its directory."""
    parts = []
    for log in sorted(workdir.rglob("*serial.log.*")):
        text = log.read_text(errors="replace")[-SERIAL_TAIL:]
        parts.append(f"--- {log.name} (last {len(text)} characters) ---\n{text}")
    return "\n".join(parts) or "(no serial console written)"


@pytest.fixture(autouse=True)
def time_budget(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    """Fail the test with its guests' consoles when its budget runs out."""
    if "guest" not in request.keywords:
        yield
        return
    budget = min(TEST_BUDGET, LANE_BUDGET - (time.monotonic() - LANE_START))
    if budget <= 0:
        pytest.fail(f"the guest lane's {LANE_BUDGET:.0f} s budget is spent before this test")

    def expire(signum: int, frame: FrameType | None) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise LaneTimeout(
            f"{request.node.name} ran out of its {budget:.0f} s budget "
            f"(the lane's: {LANE_BUDGET:.0f} s)\n{serial_tails(tmp_path)}"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def lane(image: Path, tmp_path: Path) -> Iterator[Lane]:
    """A simulator with its agent answered by a QEMU guest of the image (no violation of
    Proxmox's schema allowed)."""
    from provision.sim.server import SimServer

    state = tmp_path / "sim"
    server = SimServer(state, durations={}, validator=schema_validator()).start()
    bridge = qemu_bridge.register(state, image, tmp_path / "qemu")
    try:
        yield Lane(server, bridge, state)
    finally:
        qemu_bridge.unregister(state)
        violations = server.violations()
        server.stop()
        assert not violations, violations
