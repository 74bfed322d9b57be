"""wait_first_boot against a scripted agent: a state file that appears late, a guest that
is away during the driver reboot, a failed phase, and a guest with no aihost first boot."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from provision.errors import ApiError, GuestError, WaitTimeout
from provision.guest.agent import GuestAgent
from provision.guest.firstboot import wait_first_boot
from provision.pve.vm import Vm

MISSING = ApiError(
    "Agent error: failed to open file '/var/lib/aihost/state.json' (mode: 'r'): "
    "No such file or directory",
    status=500,
)
AWAY = ApiError("QEMU guest agent is not running", status=500)


def _state(phase: str, status: str, error: str | None = None, iid: str = "aihost-box-g1") -> str:
    return json.dumps({"phase": phase, "status": status, "error": error, "instance_id": iid})


class _Client:
    """file-read of the state answers from `reads` in turn (the last one repeats);
    /run/cloud-init/result.json exists when `finished`."""

    def __init__(self, reads: list[Any], finished: bool = False) -> None:
        self.reads = reads
        self.finished = finished

    def get(self, path: str, **params: Any) -> Any:
        assert path.endswith("/file-read")
        if params["file"] == "/run/cloud-init/result.json":
            if not self.finished:
                raise MISSING
            return {"content": '{"v1": {"errors": []}}'}
        item = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        if isinstance(item, Exception):
            raise item
        return {"content": item}

    def post(self, path: str, **params: Any) -> Any:
        raise AssertionError("no exec")


def _agent(client: _Client) -> tuple[GuestAgent, list[float]]:
    now = [0.0]
    agent = GuestAgent(
        Vm(client, "pve1", 100),
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    return agent, now


def test_waits_through_a_missing_file_and_the_reboot_then_reports_each_phase() -> None:
    client = _Client(
        [
            MISSING,
            MISSING,
            _state("driver", "running"),
            _state("reboot", "pending"),
            AWAY,
            AWAY,
            _state("runtime", "running"),
            _state("done", "ok"),
        ]
    )
    agent, _now = _agent(client)
    said: list[str] = []
    state = wait_first_boot(agent, 600, said.append)
    assert state is not None and state.phase == "done"
    assert said == [
        "first boot: driver running",
        "first boot: reboot pending",
        "first boot: runtime running",
        "first boot: done ok",
    ]


def test_a_failed_phase_is_an_error_with_the_guests_text() -> None:
    error = "aihost-install-driver exited 7: curl: (7) Failed to connect"
    agent, _now = _agent(_Client([_state("driver", "failed", error)]))
    expected = re.escape("first boot failed in the driver phase: " + error)
    with pytest.raises(GuestError, match=expected):
        wait_first_boot(agent, 600, lambda _m: None)


def test_a_failed_health_phase_is_left_to_the_callers_checks() -> None:
    agent, _now = _agent(_Client([_state("health", "failed", "aihost-health: no GPU")]))
    state = wait_first_boot(agent, 600, lambda _m: None)
    assert state is not None and (state.phase, state.status) == ("health", "failed")


def test_no_state_file_after_cloud_init_finished_means_no_aihost_first_boot() -> None:
    agent, now = _agent(_Client([MISSING], finished=True))
    assert wait_first_boot(agent, 600, lambda _m: None) is None
    assert now[0] == 0.0


def test_a_first_boot_that_does_not_finish_times_out_naming_the_phase() -> None:
    agent, _now = _agent(_Client([_state("models", "running")]))
    with pytest.raises(WaitTimeout, match=r"within 60 s; the guest is in phase models \(running\)"):
        wait_first_boot(agent, 60, lambda _m: None)


def test_the_state_of_the_instance_before_reprovision_is_not_taken_for_the_new_one() -> None:
    client = _Client(
        [
            _state("done", "ok", iid="aihost-box-g1"),
            AWAY,
            _state("done", "ok", iid="aihost-box-g1"),
            _state("runtime", "running", iid="aihost-box-g2"),
            _state("done", "ok", iid="aihost-box-g2"),
        ]
    )
    agent, _now = _agent(client)
    said: list[str] = []
    state = wait_first_boot(agent, 600, said.append, instance_id="aihost-box-g2")
    assert state is not None and state.instance_id == "aihost-box-g2"
    assert said == ["first boot: runtime running", "first boot: done ok"]


class _ClockedClient(_Client):
    """The state file says running until `done_at` on the agent's clock, then done."""

    def __init__(self, now: list[float], done_at: float) -> None:
        super().__init__([_state("models", "running")])
        self.now, self.done_at = now, done_at

    def get(self, path: str, **params: Any) -> Any:
        if params["file"] == "/var/lib/aihost/state.json" and self.now[0] >= self.done_at:
            return {"content": _state("done", "ok")}
        return super().get(path, **params)


def test_the_end_of_first_boot_is_seen_within_a_second() -> None:
    # a baked image with its model stored serves in about half a minute: a reading every
    # few seconds would add a sizeable share of that
    now = [0.0]
    client = _ClockedClient(now, done_at=30.0)
    agent = GuestAgent(
        Vm(client, "pve1", 100),
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    state = wait_first_boot(agent, 600, lambda _line: None)
    assert state is not None and state.phase == "done"
    assert 30.0 <= now[0] <= 31.0
