"""Faults on demand: request failures (HTTP 500, dropped connection, hang), task latency
and task errors, nodes going offline. Loaded from the fixture's `faults:` list or POSTed
to /_sim/faults; counters live in the world so every process sees the same Nth request.

A fault is a dict:
  kind: http500 | drop | hang | latency | task_error | node_offline
  method, path: which requests match (path is a regex searched in the path below
      /api2/json; both optional) -- for http500, drop, hang
  task: task type (qmstart, qmclone, ...) -- for latency and task_error
  node: node name -- for node_offline (and optionally to restrict task faults)
  nth: the first matching request/task it hits (1-based, default 1)
  count: how many matches from nth on it hits (default 1; 0 = every one)
  seconds: added task time (latency) or how long a request hangs (hang)
  message: the error text (http500, task_error)
"""

from __future__ import annotations

import re
from typing import Any

from provision.sim.state import World

KINDS = {"http500", "drop", "hang", "latency", "task_error", "node_offline"}
DEFAULT_MESSAGE = "simulated failure (fault injected by the aihost simulator)"


def validate_fault(spec: Any) -> dict[str, Any]:
    """A checked copy of a fault spec; ValueError names what is wrong."""
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise ValueError(f"a fault needs kind: one of {', '.join(sorted(KINDS))}")
    fault = dict(spec)
    if fault["kind"] in ("latency", "task_error") and not fault.get("task"):
        raise ValueError(f"a {fault['kind']} fault needs task: (e.g. qmstart)")
    if fault["kind"] == "node_offline" and not fault.get("node"):
        raise ValueError("a node_offline fault needs node:")
    if fault.get("path"):
        re.compile(str(fault["path"]))
    fault["nth"] = int(fault.get("nth", 1))
    fault["count"] = int(fault.get("count", 1))
    fault["seconds"] = float(fault.get("seconds", 0))
    return fault


def _hit(world: World, index: int, fault: dict[str, Any]) -> bool:
    key = str(index)
    seen = world["fault_hits"].get(key, 0) + 1
    world["fault_hits"][key] = seen
    nth, count = int(fault.get("nth", 1)), int(fault.get("count", 1))
    return seen >= nth and (count == 0 or seen < nth + count)


def request_fault(world: World, method: str, path: str) -> dict[str, Any] | None:
    """The request fault (http500/drop/hang) that hits this request, if any."""
    chosen = None
    for index, fault in enumerate(world["faults"]):
        if fault["kind"] not in ("http500", "drop", "hang"):
            continue
        if fault.get("method") and fault["method"].upper() != method:
            continue
        if fault.get("path") and not re.search(fault["path"], path):
            continue
        if _hit(world, index, fault) and chosen is None:
            chosen = fault
    return chosen


def task_fault(world: World, kind: str, node: str) -> tuple[float, str | None]:
    """(extra seconds, error text or None) for a new task of this type on node."""
    extra, error = 0.0, None
    for index, fault in enumerate(world["faults"]):
        if fault.get("task") != kind or (fault.get("node") and fault["node"] != node):
            continue
        if fault["kind"] == "latency" and _hit(world, index, fault):
            extra += float(fault.get("seconds", 0))
        elif fault["kind"] == "task_error" and _hit(world, index, fault) and error is None:
            error = str(fault.get("message") or DEFAULT_MESSAGE)
    return extra, error


def offline_nodes(world: World) -> set[str]:
    """Nodes a node_offline fault has taken away."""
    return {f["node"] for f in world["faults"] if f["kind"] == "node_offline"}
