"""Waiting for a guest that can no longer answer ends at once: qemu-server's refusals
for a VM that is not running, or has no agent configured (QemuServer/Agent.pm
assert_agent_available), are not "the agent is not up yet" (which is waited for)."""

from __future__ import annotations

from typing import Any

import pytest

from provision.errors import ApiError, GuestError
from provision.guest.agent import GuestAgent
from provision.guest.firstboot import wait_first_boot
from provision.pve.vm import Vm

NOT_YET = "QEMU guest agent is not running"
STOPPED = "VM 100 is not running"
NO_AGENT = "No QEMU guest agent configured"


class _Proxmox:
    """Every agent call refused with the messages given, in turn (the last one repeats)."""

    def __init__(self, *refusals: str) -> None:
        self.refusals = list(refusals)
        self.calls = 0

    def _refuse(self) -> Any:
        self.calls += 1
        message = self.refusals.pop(0) if len(self.refusals) > 1 else self.refusals[0]
        raise ApiError(f"agent call on host pve1 failed: {message}", status=500)

    def post(self, path: str, **params: Any) -> Any:
        return self._refuse()

    def get(self, path: str, **params: Any) -> Any:
        return self._refuse()


def _agent(proxmox: _Proxmox, *, may_stop: bool = False) -> tuple[GuestAgent, list[float]]:
    now, sleeps = [0.0], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    vm = Vm(proxmox, "pve1", 100)
    return GuestAgent(vm, clock=lambda: now[0], sleep=sleep, may_stop=may_stop), sleeps


@pytest.mark.parametrize(
    ("message", "said"),
    [(STOPPED, "VM 100 stopped while aihost waited"), (NO_AGENT, "no guest agent configured")],
)
def test_agent_wait_ends_when_no_agent_can_answer(message: str, said: str) -> None:
    proxmox = _Proxmox(NOT_YET, NOT_YET, message)
    agent, sleeps = _agent(proxmox)
    with pytest.raises(GuestError, match=said):
        agent.wait_ready(900)
    assert proxmox.calls == 3 and len(sleeps) == 2  # not 900 s of pings


def test_agent_not_up_yet_is_waited_for() -> None:
    agent, sleeps = _agent(_Proxmox(NOT_YET))
    with pytest.raises(Exception, match="did not answer within 60 s"):
        agent.wait_ready(60)
    assert sum(sleeps) == pytest.approx(60)


def test_first_boot_wait_ends_when_the_vm_stops() -> None:
    agent, _sleeps = _agent(_Proxmox(NOT_YET, STOPPED))
    with pytest.raises(GuestError, match="VM 100 stopped"):
        wait_first_boot(agent, 900, say=lambda _line: None)


def test_a_guest_that_may_stop_reads_as_away() -> None:
    """A bake ends with the guest powering itself off: its state file is unreadable then."""
    agent, _sleeps = _agent(_Proxmox(STOPPED), may_stop=True)
    assert agent.read_file("/var/lib/aihost/state.json") is None
