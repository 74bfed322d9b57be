"""Waiting for the restart after a Proxmox reboot (provision/pve/reboot.py) on plain data:
the reboot task ends at the shutdown; the VM's live status and the node's task list tell
whether qm cleanup's qmstart brought it back."""

from __future__ import annotations

from typing import Any

import pytest

from provision.errors import TaskFailed, WaitTimeout
from provision.pve.vm import Vm

REBOOT = "UPID:pve1:00001000:00002000:6A000000:qmreboot:100:aihost@pve!prov:"
RESTART = "UPID:pve1:00001001:00002001:6A000002:qmstart:100:root@pam:"


class FakeNode:
    """Answers the calls reboot_vm makes; `statuses` is the VM's status poll by poll."""

    def __init__(self, statuses: list[str], tasks: list[dict[str, Any]]) -> None:
        self.statuses = statuses
        self.tasks = tasks
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.now = 0.0

    def post(self, path: str, **params: Any) -> Any:
        self.calls.append(("POST", path, params))
        return REBOOT

    def get(self, path: str, **params: Any) -> Any:
        self.calls.append(("GET", path, params))
        if path.endswith("/status"):
            return {"status": "stopped", "exitstatus": "OK"}
        if path.endswith("/status/current"):
            return {"status": self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]}
        if path == "/nodes/pve1/tasks":
            return [t for t in self.tasks if t["starttime"] >= params["since"]]
        if path.endswith("/log"):
            return [{"n": 1, "t": "TASK ERROR: " + self.tasks[0]["status"]}]
        raise AssertionError(path)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _reboot(node: FakeNode, start_timeout: float = 30) -> None:
    Vm(node, "pve1", 100, clock=node.clock, sleep=node.sleep).reboot(start_timeout)


def test_returns_once_the_vm_runs_again() -> None:
    node = FakeNode(["stopped", "stopped", "running"], [])
    _reboot(node)
    polls = [c for c in node.calls if c[1].endswith("/status/current")]
    assert len(polls) == 3
    listing = [c for c in node.calls if c[1] == "/nodes/pve1/tasks"]
    assert listing[0][2] == {
        "vmid": 100,
        "typefilter": "qmstart",
        "source": "all",
        "since": 0x6A000000,
    }


def test_a_failed_qmstart_in_the_task_list_ends_the_wait_with_its_error() -> None:
    reason = "volume 'local:snippets/x.yaml' does not exist"
    old = {"upid": "x", "starttime": 0x69000000, "status": "some older failure", "user": "u"}
    node = FakeNode(
        ["stopped"],
        [
            {"upid": RESTART, "starttime": 0x6A000002, "status": reason, "user": "root@pam"},
            old,
        ],
    )
    with pytest.raises(TaskFailed) as caught:
        _reboot(node)
    assert caught.value.exitstatus == reason and caught.value.upid == RESTART
    assert "did not start again after its reboot" in caught.value.message
    assert caught.value.log_tail == [f"TASK ERROR: {reason}"]
    assert node.now < 1  # at once, not after the timeout


def test_without_the_task_in_sight_the_wait_is_bounded_and_says_what_it_waited_for() -> None:
    node = FakeNode(["stopped"], [])  # a token without Sys.Audit does not see root's task
    with pytest.raises(WaitTimeout) as caught:
        _reboot(node, start_timeout=30)
    assert 90 <= node.now <= 91
    assert "did not run again within 90 s of its reboot" in caught.value.message
    assert "qm cleanup" in caught.value.message and "qmstart" in (caught.value.hint or "")


def test_running_and_ok_restarts_are_not_failures() -> None:
    node = FakeNode(
        ["stopped", "running"],
        [
            {"upid": RESTART, "starttime": 0x6A000002, "status": "RUNNING"},
            {"upid": RESTART, "starttime": 0x6A000002, "status": "WARNINGS: 1"},
        ],
    )
    _reboot(node)
