"""aihost's agent polls against Proxmox's slow refusals: a call to an agent that does not
answer fails only after qemu-server's 3 s guest-ping timeout (QemuServer/Agent.pm
qga_check_running), so the pause after it is what is left of the backoff, not a full one."""

from __future__ import annotations

import json
from typing import Any

from provision.errors import ApiError
from provision.guest.agent import GuestAgent
from provision.guest.firstboot import wait_first_boot
from provision.pve.vm import Vm

AWAY = ApiError("QEMU guest agent is not running", status=500)
DONE = json.dumps({"phase": "done", "status": "ok", "error": None, "instance_id": "i"})
REBOOT = json.dumps({"phase": "reboot", "status": "pending", "error": None, "instance_id": "i"})


class _Proxmox:
    """Agent calls that are refused `away` times, each after `refusal` seconds."""

    def __init__(self, now: list[float], away: int, refusal: float) -> None:
        self.now, self.away, self.refusal = now, away, refusal
        self.calls: list[float] = []

    def _call(self) -> None:
        self.calls.append(self.now[0])
        if self.away > 0:
            self.away -= 1
            self.now[0] += self.refusal
            raise AWAY

    def post(self, path: str, **params: Any) -> Any:
        assert path.endswith("/agent/ping")
        self._call()
        return {"result": {}}

    def get(self, path: str, **params: Any) -> Any:
        """The state file: the reboot's phase, then (the guest away) refusals, then done."""
        assert path.endswith("/agent/file-read") and params["file"].endswith("state.json")
        if not self.calls:
            self.calls.append(self.now[0])
            return {"content": REBOOT}
        self._call()
        return {"content": DONE}


def _agent(away: int, refusal: float) -> tuple[GuestAgent, _Proxmox, list[float]]:
    now, sleeps = [0.0], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    proxmox = _Proxmox(now, away, refusal)
    agent = GuestAgent(Vm(proxmox, "pve1", 100), clock=lambda: now[0], sleep=sleep)
    return agent, proxmox, sleeps


def test_a_three_second_refusal_is_not_followed_by_a_pause() -> None:
    agent, proxmox, sleeps = _agent(away=10, refusal=3.0)
    assert agent.wait_ready(600) == 30.0  # the agent answers the 11th ping, at once
    assert sleeps == []
    assert proxmox.calls == [3.0 * n for n in range(11)]


def test_instant_refusals_still_back_off() -> None:
    agent, proxmox, sleeps = _agent(away=6, refusal=0.0)
    agent.wait_ready(600)
    assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]


def test_a_refusal_shorter_than_the_pause_leaves_the_rest_of_it() -> None:
    agent, _proxmox, sleeps = _agent(away=2, refusal=0.02)
    agent.wait_ready(600)
    assert [round(s, 6) for s in sleeps] == [0.03, 0.08]


def test_first_boot_readings_while_the_guest_is_away_are_not_followed_by_a_pause() -> None:
    agent, proxmox, sleeps = _agent(away=4, refusal=3.0)  # the driver's reboot
    said: list[str] = []
    state = wait_first_boot(agent, 600, said.append)
    assert state is not None and state.phase == "done"
    assert said == ["first boot: reboot pending", "first boot: done ok"]
    assert sleeps == [0.05]  # after the first reading, which was answered at once
    assert proxmox.calls == [0.0, 0.05, 3.05, 6.05, 9.05, 12.05]
