"""The Environment's clock is the one `vm up` measures its wait for the guest agent with."""

from __future__ import annotations

import itertools
import time

from aihost_testing import run_aihost

from provision.errors import EXIT_TIMEOUT


def test_vm_up_times_the_agent_wait_with_the_injected_clock(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": {"runtime": "none"}})
    sim.control("durations", {"boot": 60})  # the agent answers 60 s after the start
    ticks = itertools.count(step=1000.0)  # every reading is 1000 s after the last
    began = time.monotonic()
    result = run_aihost(
        "-i",
        str(inventory),
        "vm",
        "up",
        "box",
        "--agent-timeout",
        "5",
        clock=lambda: float(next(ticks)),
    )
    assert result.exit_code == EXIT_TIMEOUT, result.stderr
    assert "the guest agent did not answer within 5 s" in result.stderr
    assert time.monotonic() - began < 4  # the real clock would have waited the 5 s
