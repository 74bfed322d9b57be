"""A program the guest lacks: qemu-ga's guest-exec runs no shell, so Proxmox answers the
exec call with HTTP 500 "Agent error: ..." carrying glib's spawn error (qemu-server
QemuServer/Agent.pm check_agent_error); aihost reads that, never an exit code 127."""

from __future__ import annotations

from typing import Any

import pytest

from provision.errors import ApiError, GuestError
from provision.guest.agent import GuestAgent, ProgramNotFound
from provision.guest.verify import verify_guest
from provision.pve.vm import Vm

OLD_QGA = (
    "Agent error: Guest agent command failed, error was 'Failed to execute child "
    "process \u201cnvidia-smi\u201d (No such file or directory)'"
)
NEW_QGA = "Agent error: Failed to execute child process \u201cnvidia-smi\u201d (Permission denied)"


class Agentless:
    """The API answering exec with an agent error; ping works."""

    def __init__(self, message: str) -> None:
        self.message = message

    def post(self, path: str, **params: Any) -> Any:
        if path.endswith("/exec"):
            raise ApiError(self.message, status=500)
        return {"result": {}}

    def get(self, path: str, **params: Any) -> Any:
        if path.endswith("/file-read"):  # cloud-init finished; no aihost state file
            if params.get("file") == "/run/cloud-init/result.json":
                return {"content": '{"v1": {"errors": []}}', "bytes-read": 22}
            raise ApiError("Agent error: failed to open file", status=500)
        raise AssertionError("no exec-status without a started program")


@pytest.mark.parametrize(
    ("message", "reason"), [(OLD_QGA, "No such file or directory"), (NEW_QGA, "Permission denied")]
)
def test_spawn_failure_is_program_not_found(message: str, reason: str) -> None:
    agent = GuestAgent(Vm(Agentless(message), "pve1", 100))
    with pytest.raises(ProgramNotFound) as caught:
        agent.run(["nvidia-smi"])
    assert (caught.value.program, caught.value.reason) == ("nvidia-smi", reason)


def test_other_agent_errors_pass_through() -> None:
    agent = GuestAgent(Vm(Agentless("QEMU guest agent is not running"), "pve1", 100))
    with pytest.raises(ApiError) as caught:
        agent.run(["nvidia-smi"])
    assert not isinstance(caught.value, ProgramNotFound)


def test_verify_says_the_driver_is_not_installed() -> None:
    agent = GuestAgent(Vm(Agentless(OLD_QGA), "pve1", 100))
    with pytest.raises(GuestError) as caught:
        verify_guest(agent, expect_gpu=True, runtime="none", models=[], agent_timeout=1)
    assert caught.value.message == (
        "nvidia-smi is not installed in the guest (No such file or directory)"
    )
    assert "NVIDIA driver is not installed" in (caught.value.hint or "")
