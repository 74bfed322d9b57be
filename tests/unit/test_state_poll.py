"""How often `vm up` reads the guest's state file while first boot runs
(provision/guest/firstboot.py next_pause): the end of a short first boot is seen within
0.25 s, a long one's within 1 s, for a bounded number of readings more than one a second."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provision.guest.agent import GuestAgent
from provision.guest.firstboot import next_pause, wait_first_boot
from provision.pve.vm import Vm


class _Guest:
    """A state file that says `health running` until `end` seconds, then `done ok`."""

    def __init__(self, end: float) -> None:
        self.end = end
        self.now = 0.0
        self.reads: list[float] = []

    def get(self, path: str, **params: Any) -> Any:
        assert path.endswith("/file-read") and params["file"] == "/var/lib/aihost/state.json"
        self.reads.append(self.now)
        phase, status = ("done", "ok") if self.now >= self.end else ("health", "running")
        return {"content": json.dumps({"phase": phase, "status": status})}

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _follow(end: float) -> _Guest:
    guest = _Guest(end)
    agent = GuestAgent(Vm(guest, "pve1", 100), clock=lambda: guest.now, sleep=guest.sleep)
    state = wait_first_boot(agent, 7200, lambda _msg: None)
    assert state is not None and state.phase == "done"
    return guest


@pytest.mark.parametrize("end", [round(5 + i * 0.13, 2) for i in range(40)])
def test_a_short_first_boots_end_is_seen_within_a_quarter_second(end: float) -> None:
    guest = _follow(end)
    assert guest.reads[-1] - end <= 0.25 + 1e-9


@pytest.mark.parametrize("end", [60.3, 347.7, 900.5])
def test_a_long_ones_within_a_second_for_a_bounded_number_of_readings_more(end: float) -> None:
    guest = _follow(end)
    assert guest.reads[-1] - end <= 1.0 + 1e-9
    assert len(guest.reads) <= end + 70  # one a second would be `end` readings


def test_the_pause_doubles_up_to_a_share_of_the_wait_between_its_bounds() -> None:
    assert next_pause(0.05, 0.0) == 0.1
    assert next_pause(0.2, 1.0) == 0.25
    assert next_pause(0.25, 20.0) == 0.5
    assert next_pause(1.0, 3600.0) == 1.0
