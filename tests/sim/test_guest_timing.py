"""The simulated guest's first boot takes time (provision/sim/guest_timeline.py): read at
t seconds after the start, /var/lib/aihost/state.json shows the phases done by t, the
current one running, and in the models phase the download's bytes; the agent is away
before cloud-init installed it and during the driver's reboot. A hand-moved clock."""

from __future__ import annotations

import json
from typing import Any

import pytest
from proxmoxer.core import ResourceException
from test_guest_state import _started, _user_data

from provision.sim.guest_models import model_bytes

DURATIONS = {
    "guest_apt": 10.0,
    "guest_driver": 20.0,
    "guest_dkms": 30.0,
    "guest_reboot": 10.0,
    "guest_runtime": 10.0,
    "guest_pull_s_per_gb": 10.0,  # 4.92 GB of llama3.1:8b: 49.2 s
    "guest_load_s_per_gb": 1.0,
    "guest_health": 5.0,
}
SIZE = model_bytes("llama3.1:8b")


class FakeClock:
    """The simulator's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _state(vm) -> dict[str, Any]:
    return json.loads(vm.agent("file-read").get(file="/var/lib/aihost/state.json")["content"])


@pytest.fixture
def timed(make_sim):
    clock = FakeClock()
    sim = make_sim(durations=DURATIONS, clock=clock)
    vm = _started(sim, _user_data({"gpu": "g1", "models": ["llama3.1:8b"]}), gpu=True)
    return vm, clock


def _at(clock: FakeClock, start: float, t: float) -> None:
    clock.now = start + t


def test_the_state_file_follows_the_phases_as_time_passes(timed):
    vm, clock = timed
    start = clock.now
    _at(clock, start, 5)  # cloud-init still installs packages: no agent yet
    with pytest.raises(ResourceException, match="guest agent is not running"):
        vm.agent.ping.post()
    _at(clock, start, 30)
    state = _state(vm)
    assert (state["phase"], state["status"]) == ("driver", "running")
    assert list(state["phases"]) == ["driver"]
    _at(clock, start, 65)  # the driver's reboot: the agent is away
    with pytest.raises(ResourceException, match="guest agent is not running"):
        vm.agent.ping.post()
    _at(clock, start, 75)
    state = _state(vm)
    assert (state["phase"], state["status"]) == ("runtime", "running")
    assert state["phases"]["reboot"]["status"] == "ok"
    assert "download" not in state
    _at(clock, start, 100)  # 20 s into a 49.2 s download
    state = _state(vm)
    assert (state["phase"], state["status"]) == ("models", "running")
    download = state["download"]
    assert (download["model"], download["total"], download["index"], download["count"]) == (
        "llama3.1:8b",
        SIZE,
        1,
        1,
    )
    assert download["completed"] == int(20 / (SIZE * 10 / 1e9) * SIZE)
    _at(clock, start, 130)  # downloaded; health loads it (4.92 s) while its 5 s of checks run
    state = _state(vm)
    assert (state["phase"], state["status"], state.get("download")) == ("health", "running", None)
    _at(clock, start, 134.1)
    assert (_state(vm)["phase"], _state(vm)["status"]) == ("health", "running")
    _at(clock, start, 134.3)  # 129.2 + max(5, 4.92): not their sum
    state = _state(vm)
    assert (state["phase"], state["status"]) == ("done", "ok")
    assert [p["status"] for p in state["phases"].values()] == ["ok"] * 6


def test_cloud_init_reports_finished_only_after_the_last_phase(timed):
    vm, clock = timed
    start = clock.now
    _at(clock, start, 100)
    with pytest.raises(ResourceException):
        vm.agent("file-read").get(file="/run/cloud-init/result.json")
    _at(clock, start, 140)
    assert vm.agent("file-read").get(file="/run/cloud-init/result.json")["content"]


def test_a_restart_after_first_boot_does_not_replay_it(timed, make_sim):
    vm, clock = timed
    clock.now += 500
    assert _state(vm)["phase"] == "done"
    vm.status.stop.post()
    vm.status.start.post()
    clock.now += 1
    assert (_state(vm)["phase"], _state(vm)["status"]) == ("done", "ok")
