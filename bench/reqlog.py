"""Read the simulator's request log: requests, writes, task polls and detection delay."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

STATUS_RE = re.compile(r"/tasks/(UPID:[^/?]+)/status")
TIME_KEYS = ("time", "t", "ts", "at", "started", "start")


def path_of(entry: Mapping[str, Any]) -> str:
    """The request path, URL-decoded."""
    return unquote(str(entry.get("path", "")))


def time_of(entry: Mapping[str, Any]) -> float | None:
    """The request's arrival time (epoch seconds), when the log records one."""
    for key in TIME_KEYS:
        value = entry.get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def is_agent(entry: Mapping[str, Any]) -> bool:
    """A guest-agent call (guest checks, not a change to the VM)."""
    return "/agent/" in path_of(entry)


def writes(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests that change something on Proxmox (not GET, not a guest-agent call)."""
    return [e for e in log if str(e.get("method", "")).upper() != "GET" and not is_agent(e)]


def summary(log: list[dict[str, Any]]) -> dict[str, int]:
    """Counts: all requests, reads, writes, task polls, guest-agent calls."""
    polls = sum(1 for e in log if STATUS_RE.search(path_of(e)))
    agent = sum(1 for e in log if is_agent(e))
    wrote = len(writes(log))
    return {
        "requests": len(log),
        "reads": len(log) - wrote - agent,
        "writes": wrote,
        "task_polls": polls,
        "agent_calls": agent,
    }


def upid_type(upid: str) -> str:
    """The task type field of a UPID (UPID:node:pid:pstart:starttime:TYPE:id:user:)."""
    parts = upid.split(":")
    return parts[5] if len(parts) > 6 else "?"


@dataclass
class TaskPolls:
    """How one tool waited for one task."""

    upid: str
    type: str
    polls: int
    detection_delay: float | None  # last poll minus the task's end, when times are logged


def task_polls(log: list[dict[str, Any]], durations: Mapping[str, float]) -> list[TaskPolls]:
    """Per task: status requests and the delay from the task's end to its last poll.

    A task's start is taken as the arrival of the last write before its first poll (the
    request that created it; valid for one tool working sequentially), its end as start
    plus the simulator's duration for its type.
    """
    polls: dict[str, list[int]] = {}
    for index, entry in enumerate(log):
        match = STATUS_RE.search(path_of(entry))
        if match:
            polls.setdefault(match.group(1), []).append(index)
    result = []
    for upid, indexes in polls.items():
        kind = upid_type(upid)
        delay = None
        last = time_of(log[indexes[-1]])
        creator = _creator(log, indexes[0])
        started = time_of(log[creator]) if creator is not None else None
        if last is not None and started is not None:
            delay = max(0.0, last - (started + durations.get(kind, 0.0)))
        result.append(TaskPolls(upid, kind, len(indexes), delay))
    return result


def _creator(log: list[dict[str, Any]], first_poll: int) -> int | None:
    for index in range(first_poll - 1, -1, -1):
        entry = log[index]
        if str(entry.get("method", "")).upper() in ("POST", "PUT", "DELETE") and not is_agent(
            entry
        ):
            return index
    return None


def task_time(log: list[dict[str, Any]], durations: Mapping[str, float]) -> float:
    """Simulated task seconds of the tasks a sequential run waited for (its critical path)."""
    return sum(durations.get(t.type, 0.0) for t in task_polls(log, durations))


def first_time(log: list[dict[str, Any]], method: str, suffix: str) -> float | None:
    """Arrival time of the first request with this method whose path ends with suffix."""
    for entry in log:
        if str(entry.get("method", "")).upper() == method and path_of(entry).endswith(suffix):
            return time_of(entry)
    return None
