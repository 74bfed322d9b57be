"""The task waiter: backoff with a fake clock, warnings, failures with log lines, timeouts."""

from __future__ import annotations

import pytest
import responses
from pve_testing import API, make_client, schema_violations

from provision.errors import EXIT_TIMEOUT, ApiError, TaskFailed, WaitTimeout
from provision.pve.tasks import TaskResult, parse_upid, task_log_tail, wait_task

UPID = "UPID:pve2:0001A2B3:00C0FFEE:65A0B0C0:qmclone:9000:aihost@pve!prov:"


class FakeClock:
    """time.monotonic and time.sleep that only move when slept."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeTaskApi:
    """Answers task status 'running' until `finish_at` (fake time), then stopped."""

    def __init__(
        self,
        clock: FakeClock,
        finish_at: float,
        exitstatus: str = "OK",
        log: list[str] | None = None,
    ) -> None:
        self.clock = clock
        self.finish_at = finish_at
        self.exitstatus = exitstatus
        self.log = log or []
        self.calls: list[tuple[str, dict]] = []

    def get(self, path: str, **params):
        self.calls.append((path, params))
        if path.endswith("/log"):
            return [{"n": i + 1, "t": t} for i, t in enumerate(self.log)]
        if self.clock.now >= self.finish_at:
            return {"status": "stopped", "exitstatus": self.exitstatus, "upid": UPID}
        return {"status": "running", "upid": UPID}


def test_parse_upid():
    upid = parse_upid(UPID)
    assert upid.node == "pve2"
    assert upid.pid == 0x1A2B3 and upid.pstart == 0xC0FFEE and upid.starttime == 0x65A0B0C0
    assert (upid.type, upid.id, upid.user) == ("qmclone", "9000", "aihost@pve!prov")


@pytest.mark.parametrize("bad", ["", "not-a-upid", "UPID:pve1:zz:1:1:qmstart:100:root@pam:", None])
def test_parse_upid_rejects(bad):
    with pytest.raises(ApiError):
        parse_upid(bad)


def test_finished_task_costs_one_poll_on_the_node_of_the_upid():
    clock = FakeClock()
    api = FakeTaskApi(clock, finish_at=0)
    result = wait_task(api, UPID, timeout=60, what="clone", clock=clock.clock, sleep=clock.sleep)
    assert result == TaskResult(UPID, "OK", 0, 0.0)
    assert api.calls == [(f"/nodes/pve2/tasks/{UPID}/status", {})]
    assert clock.sleeps == []


UNTYPED = UPID.replace(":qmclone:", ":qmmove:")  # a type without a typical duration


def test_backoff_doubles_from_50ms_and_caps_at_half_a_second():
    clock = FakeClock()
    api = FakeTaskApi(clock, finish_at=clock.now + 5.0)
    messages: list[str] = []
    result = wait_task(
        api,
        UNTYPED,
        timeout=60,
        what="move of a disk",
        progress=messages.append,
        clock=clock.clock,
        sleep=clock.sleep,
    )
    assert clock.sleeps[:6] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.5, 0.5])
    assert max(clock.sleeps) == 0.5
    # 4 doubling sleeps (0.75 s), then 0.5 s steps until past 5 s (9 more): 14 polls
    assert len(api.calls) == len(clock.sleeps) + 1 == 14
    assert result.duration == pytest.approx(sum(clock.sleeps))
    assert result.duration >= 5.0
    assert messages == ["waiting for move of a disk (task qmmove on pve2)"]


def _waited(upid: str, took: float, **extra) -> tuple[float, int]:
    """(detection delay, status polls) of waiting for a task that ends after took s."""
    clock = FakeClock()
    api = FakeTaskApi(clock, finish_at=clock.now + took)
    result = wait_task(
        api, upid, timeout=600, what="t", clock=clock.clock, sleep=clock.sleep, **extra
    )
    return result.duration - took, len(api.calls)


def test_a_task_of_typical_length_is_noticed_at_its_expected_end():
    # qmclone typically takes 5 s: polls converge on the expected end instead of
    # stepping past it by up to 0.5 s (plain backoff notices it 0.25 s late here), and
    # the last one before it lands on it rather than up to 50 ms after it
    late, polls = _waited(UPID, 5.0)
    assert late == pytest.approx(0.0, abs=1e-9)
    assert polls <= 17
    assert _waited(UPID, 4.99)[0] <= 0.05
    plain_late, _ = _waited(UNTYPED, 5.0)
    assert plain_late == pytest.approx(0.25)


def test_the_caller_may_say_what_to_expect():
    late, _ = _waited(UNTYPED, 2.3, expected=2.3)
    assert late == pytest.approx(0.0, abs=1e-9)
    plain_late, _ = _waited(UNTYPED, 2.3)
    assert plain_late > 0.1


@pytest.mark.parametrize("took", [0.0, 0.01, 0.3, 1.0, 2.2, 4.9, 5.2, 7.0, 30.0])
def test_an_untypical_task_is_noticed_no_later_than_with_plain_backoff(took):
    late, polls = _waited(UPID, took)
    assert late <= 0.5 + 1e-9
    plain_late, plain_polls = _waited(UNTYPED, took)
    assert late <= plain_late + 1e-9 or late <= 0.05
    assert polls <= plain_polls * 1.5 + 3


def test_a_task_that_ends_at_once_costs_one_or_two_polls():
    assert _waited(UPID, 0.0)[1] == 1
    assert _waited(UPID, 0.04)[1] == 2


def test_warnings_are_success_with_a_count():
    clock = FakeClock()
    api = FakeTaskApi(clock, finish_at=0, exitstatus="WARNINGS: 1")
    result = wait_task(api, UPID, timeout=5, what="start", clock=clock.clock, sleep=clock.sleep)
    assert result.warnings == 1 and result.exitstatus == "WARNINGS: 1"


def test_failure_carries_exitstatus_and_last_ten_log_lines():
    clock = FakeClock()
    log = [f"line {i}" for i in range(1, 15)] + [
        "",
        "TASK ERROR: PCI device '0000:01:00.0' already in use by VMID '100'",
    ]
    api = FakeTaskApi(
        clock,
        finish_at=clock.now + 0.1,
        exitstatus="PCI device '0000:01:00.0' already in use by VMID '100'",
        log=log,
    )
    with pytest.raises(TaskFailed) as caught:
        wait_task(
            api, UPID, timeout=30, what="start of llm-box", clock=clock.clock, sleep=clock.sleep
        )
    error = caught.value
    assert error.exitstatus == "PCI device '0000:01:00.0' already in use by VMID '100'"
    assert error.upid == UPID
    assert error.log_tail == [*[f"line {i}" for i in range(6, 15)], log[-1]]
    assert error.message.startswith(
        "start of llm-box failed: Proxmox task qmclone ended with: "
        "PCI device '0000:01:00.0' already in use by VMID '100'"
    )
    log_call = api.calls[-1]
    assert log_call == (f"/nodes/pve2/tasks/{UPID}/log", {"start": 0, "limit": 1000})


def test_failure_message_includes_log_when_status_is_terse():
    clock = FakeClock()
    api = FakeTaskApi(
        clock,
        finish_at=0,
        exitstatus="command 'qm start' failed: exit code 1",
        log=["kvm: -device vfio-pci: failed to open /dev/vfio/1: Device busy"],
    )
    with pytest.raises(TaskFailed, match=r"log: kvm: -device vfio-pci: failed to open"):
        wait_task(api, UPID, timeout=30, what="start", clock=clock.clock, sleep=clock.sleep)


def test_timeout_says_what_it_waited_for_and_is_bounded():
    clock = FakeClock()
    api = FakeTaskApi(clock, finish_at=float("inf"))
    with pytest.raises(WaitTimeout) as caught:
        wait_task(
            api, UPID, timeout=3, what="shutdown of llm-box", clock=clock.clock, sleep=clock.sleep
        )
    error = caught.value
    assert error.exit_code == EXIT_TIMEOUT
    assert "gave up waiting for shutdown of llm-box after 3 s" in error.message
    assert UPID in (error.hint or "")
    assert sum(clock.sleeps) == pytest.approx(3.0)  # never sleeps past the deadline
    assert len(api.calls) == len(clock.sleeps) + 1


def test_no_upid_means_done_without_a_request():
    api = FakeTaskApi(FakeClock(), finish_at=0)
    assert wait_task(api, None, timeout=5, what="config").exitstatus == "OK"
    assert api.calls == []


def test_log_tail_survives_an_unreadable_log():
    class Broken:
        def get(self, path, **params):
            raise ApiError("gone", status=500)

    assert task_log_tail(Broken(), "pve1", UPID) == []


@responses.activate
def test_request_shapes_through_a_real_client():
    client = make_client()
    status = f"{API}/nodes/pve2/tasks/{UPID}/status"
    responses.get(status, json={"data": {"status": "running", "upid": UPID}})
    responses.get(status, json={"data": {"status": "stopped", "exitstatus": "clone failed: x"}})
    responses.get(
        f"{API}/nodes/pve2/tasks/{UPID}/log",
        json={
            "data": [
                {"n": 1, "t": "create full clone of drive scsi0"},
                {"n": 2, "t": "TASK ERROR: clone failed: x"},
            ]
        },
    )
    with pytest.raises(TaskFailed) as caught:
        wait_task(client, UPID, timeout=10, what="clone", sleep=lambda _s: None)
    assert caught.value.log_tail == [
        "create full clone of drive scsi0",
        "TASK ERROR: clone failed: x",
    ]
    assert client.request_count() == 3
    assert responses.calls[2].request.url.endswith("/log?start=0&limit=1000")
    assert schema_violations(responses.calls) == []
