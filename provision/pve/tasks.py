"""Waiting for Proxmox tasks: bounded, with backoff, failing with the task's own log.

A long operation answers with a UPID `UPID:node:pid:pstart:starttime:type:id:user:`;
its state is at GET /nodes/{node}/tasks/{upid}/status (`status` running|stopped and,
when stopped, `exitstatus` "OK", "WARNINGS: N" or the error text).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from provision.errors import ApiError, TaskFailed, WaitTimeout
from provision.pve.api import Api
from provision.pve.polling import next_delay, typical_seconds
from provision.pve.translate import PERMISSION_RE

LOG_LINES = 10
LOG_LIMIT = 1000
WARNINGS_RE = re.compile(r"^WARNINGS: (\d+)$")

TASK_MARGIN = 60  # seconds a task may take beyond the timeout it was given


@dataclass(frozen=True)
class Upid:
    """The fields of a UPID (pid, pstart and starttime are hex in the string)."""

    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str


@dataclass(frozen=True)
class TaskResult:
    """A finished, successful task: its exit status and how many warnings it had."""

    upid: str
    exitstatus: str
    warnings: int
    duration: float


def parse_upid(upid: str) -> Upid:
    """Split a UPID; ApiError when it is not one (e.g. a response that was not a task)."""
    parts = str(upid).split(":")
    if len(parts) < 9 or parts[0] != "UPID":
        raise ApiError(f"expected a task id (UPID:...), Proxmox answered {upid!r}")
    try:
        return Upid(
            node=parts[1],
            pid=int(parts[2], 16),
            pstart=int(parts[3], 16),
            starttime=int(parts[4], 16),
            type=parts[5],
            id=parts[6],
            user=":".join(parts[7:-1]) if parts[-1] == "" else ":".join(parts[7:]),
        )
    except ValueError:
        raise ApiError(f"malformed task id {upid!r}") from None


def wait_task(
    client: Api,
    upid: str | None,
    *,
    timeout: float,
    what: str,
    progress: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    expected: float | None = None,
) -> TaskResult:
    """Poll the task until it stops; return its result or raise TaskFailed / WaitTimeout.

    The first poll is immediate; the next ones follow provision.pve.polling: backoff
    from 0.05 s, converging on the end expected from the task type's typical duration
    (or expected, when the caller knows better), never more than 0.5 s apart. upid None
    (a config change Proxmox finished at once) returns an OK result without a request.
    """
    if not upid:
        return TaskResult(upid="", exitstatus="OK", warnings=0, duration=0.0)
    info = parse_upid(upid)
    path = f"/nodes/{info.node}/tasks/{upid}/status"
    if expected is None:
        expected = typical_seconds(info.type)
    start = clock()
    delay: float | None = None
    announced = False
    while True:
        status = client.get(path) or {}
        elapsed = clock() - start
        if status.get("status") == "stopped":
            return _finished(client, upid, info, str(status.get("exitstatus", "")), what, elapsed)
        if elapsed >= timeout:
            raise WaitTimeout(
                f"gave up waiting for {what} after {timeout:.0f} s: Proxmox task {info.type} "
                f"on node {info.node} is still running",
                hint=f"the task may still finish; watch it in the node's task log ({upid})",
            )
        if progress and not announced:
            progress(f"waiting for {what} (task {info.type} on {info.node})")
            announced = True
        delay = next_delay(elapsed, delay, expected)
        sleep(min(delay, max(0.0, timeout - elapsed)))


def _finished(
    client: Api, upid: str, info: Upid, exitstatus: str, what: str, elapsed: float
) -> TaskResult:
    if exitstatus == "OK":
        return TaskResult(upid, exitstatus, 0, elapsed)
    match = WARNINGS_RE.match(exitstatus)
    if match:
        return TaskResult(upid, exitstatus, int(match.group(1)), elapsed)
    tail = task_log_tail(client, info.node, upid)
    shown = "; ".join(tail[-3:]) if tail else ""
    message = f"{what} failed: Proxmox task {info.type} ended with: {exitstatus or 'no status'}"
    if shown and exitstatus not in shown:
        message += f" (log: {shown})"
    raise TaskFailed(
        message,
        upid=upid,
        exitstatus=exitstatus,
        log_tail=tail,
        hint=_task_hint(exitstatus, info.user),
    )


def _task_hint(exitstatus: str, user: str) -> str | None:
    """What to do about refusals Proxmox makes inside a worker (qemu-server checks some
    privileges only there, e.g. Mapping.Use and raw hostpci on POST .../config)."""
    denied = PERMISSION_RE.search(exitstatus)
    if denied:
        return (
            f"the task ran as {user}, which lacks {denied.group(2)} on {denied.group(1)}; "
            "`aihost host check` prints the pveum commands that grant what is missing"
        )
    if "config for non-mapped devices" in exitstatus:
        return (
            "raw PCI devices need a root@pam password login; with a token use a "
            "cluster PCI mapping (`aihost gpu map GPU`)"
        )
    return None


def task_log_tail(client: Api, node: str, upid: str, lines: int = LOG_LINES) -> list[str]:
    """The last lines of a task's log (empty when the log cannot be read)."""
    try:
        entries = client.get(f"/nodes/{node}/tasks/{upid}/log", start=0, limit=LOG_LIMIT) or []
    except ApiError:
        return []
    text = [str(e.get("t", "")) for e in entries if isinstance(e, dict)]
    text = [t for t in text if t.strip()]
    return text[-lines:]
