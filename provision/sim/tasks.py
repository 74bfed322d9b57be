"""Worker tasks of the simulator: UPIDs, durations and lazy completion by the clock.

A task records when it started, when it is due to end and how it ends (an error text or
None, warnings). Nothing runs in the background: every request first calls `advance`,
which finishes the tasks that are due (in order of their end time) and applies their
effects through the `apply` callback (provision.sim.lifecycle.apply_task).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provision.sim.state import World

DEFAULT_DURATIONS: dict[str, float] = {
    "qmclone": 2.0,
    "qmcreate": 1.0,
    "qmstart": 1.5,
    "qmstop": 0.5,
    "qmshutdown": 1.5,
    "qmreboot": 2.0,
    "qmconfig": 0.0,
    "resize": 0.0,  # qemu-server resize_vm's worker type (not "qmresize")
    "qmdestroy": 0.5,
    "qmtemplate": 0.5,
    "boot": 3.0,
    # not a task: seconds between pvestatd broadcasts (name/status in /cluster/resources)
    "pvestatd": 10.0,
    # not a task: how long an agent call waits for a guest agent that does not answer
    # (qemu-server src/PVE/QemuServer/Agent.pm `qga_check_running`: guest-ping, timeout 3)
    "qga_ping_timeout": 3.0,
}
KEEP_FINISHED = 300

Apply = Callable[[World, dict[str, Any], float], None]


def make_upid(
    node: str, pid: int, pstart: int, starttime: int, kind: str, vmid: str, user: str
) -> str:  # noqa: E501
    """A UPID as pvedaemon writes it: UPID:node:pid:pstart:starttime:type:id:user:."""
    return f"UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{kind}:{vmid}:{user}:"


def parse_upid(upid: str) -> dict[str, Any] | None:
    """The fields of a UPID, or None when it is not one."""
    parts = upid.split(":")
    if len(parts) != 9 or parts[0] != "UPID" or parts[8] != "":
        return None
    try:
        return {
            "node": parts[1],
            "pid": int(parts[2], 16),
            "pstart": int(parts[3], 16),
            "starttime": int(parts[4], 16),
            "type": parts[5],
            "id": parts[6],
            "user": parts[7],
        }
    except ValueError:
        return None


def new_task(
    world: World,
    now: float,
    *,
    node: str,
    kind: str,
    vmid: str,
    user: str,
    duration: float,
    effect: dict[str, Any],
    error: str | None = None,
    warnings: list[str] | None = None,
    log: list[str] | None = None,
) -> str:
    """Record a running task ending at now + duration; returns its UPID."""
    counters = world["counters"]
    counters["pid"] += 1
    pstart = int((now - world["created"]) * 100) + 1000
    upid = make_upid(node, counters["pid"], pstart, int(now), kind, vmid, user)
    world["tasks"][upid] = {
        "node": node,
        "type": kind,
        "id": vmid,
        "user": user,
        "pid": counters["pid"],
        "pstart": pstart,
        "starttime": int(now),
        "start": now,
        "end": now + max(duration, 0.0),
        "status": "running",
        "error": error,
        "warnings": list(warnings or []),
        "effect": effect,
        "log": list(log or []),
        "exitstatus": None,
    }
    return upid


def advance(world: World, now: float, apply: Apply) -> None:
    """Finish every task due by now, oldest end first, applying its effect. An effect may
    start a task of its own (a reboot's restart), which is finished here too once due."""
    while True:
        due = [
            (t["end"], upid)
            for upid, t in world["tasks"].items()
            if t["status"] == "running" and t["end"] <= now
        ]
        if not due:
            break
        upid = min(due)[1]
        task = world["tasks"][upid]
        task["status"] = "stopped"  # before apply: an effect's new task is not this one
        apply(world, task, task["end"])
        _close(task)
    finished = [u for u, t in world["tasks"].items() if t["status"] == "stopped"]
    for upid in sorted(finished, key=lambda u: world["tasks"][u]["end"])[:-KEEP_FINISHED]:
        del world["tasks"][upid]


def _close(task: dict[str, Any]) -> None:
    for warning in task["warnings"]:
        task["log"].append(f"WARN: {warning}")
    if task["error"]:
        # pve-common RESTEnvironment fork_worker: chomp, newlines become spaces
        task["error"] = " ".join(str(task["error"]).rstrip("\n").split("\n"))
        task["log"].append(f"TASK ERROR: {task['error']}")
        task["exitstatus"] = task["error"]
    elif task["warnings"]:
        task["exitstatus"] = f"WARNINGS: {len(task['warnings'])}"
        task["log"].append(f"TASK {task['exitstatus']}")
    else:
        task["exitstatus"] = "OK"
        task["log"].append("TASK OK")


def running_tasks(world: World, kind: str | None = None) -> list[dict[str, Any]]:
    """Tasks still running (optionally of one type)."""
    return [
        t
        for t in world["tasks"].values()
        if t["status"] == "running" and (kind is None or t["type"] == kind)
    ]


def task_status(upid: str, task: dict[str, Any]) -> dict[str, Any]:
    """GET /nodes/{node}/tasks/{upid}/status."""
    out = {
        "upid": upid,
        "node": task["node"],
        "pid": task["pid"],
        "pstart": task["pstart"],
        "starttime": task["starttime"],
        "type": task["type"],
        "id": task["id"],
        "user": task["user"].partition("!")[0],
        "status": task["status"],
    }
    if "!" in task["user"]:
        out["tokenid"] = task["user"].partition("!")[2]
    if task["status"] == "stopped":
        out["exitstatus"] = task["exitstatus"]
    return out


def task_log(task: dict[str, Any], start: int = 0, limit: int = 50) -> list[dict[str, Any]]:
    """GET /nodes/{node}/tasks/{upid}/log: numbered lines {n, t}."""
    lines = task["log"]
    if not lines:  # pve-common dump_logfile_by_filehandle: an empty log reads "no content"
        return [{"n": 1, "t": "no content"}]
    chosen = lines[start : start + limit] if limit else lines[start:]
    return [{"n": start + i + 1, "t": line} for i, line in enumerate(chosen)]


def _visible(task: dict[str, Any], user: str, auditor: bool) -> bool:
    """pve-manager PVE/API2/Tasks.pm `$check_task_user`: a token sees its own tasks, a user
    its own and (once finished: only archived ones carry `tokenid`) its tokens' ones;
    Sys.Audit on the node sees every task."""
    if auditor or user == task["user"]:
        return True
    return task["status"] == "stopped" and user == task["user"].partition("!")[0]


def task_list(
    world: World, node: str, user: str, auditor: bool, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """GET /nodes/{node}/tasks (pve-manager PVE/API2/Tasks.pm `node_tasks`): running tasks
    first (source active|all), then finished ones newest first (source archive|all, the
    default archive); filters vmid, typefilter, userfilter, since, until, errors, start,
    limit. A finished task's `status` is its exit status, a running one's "RUNNING"."""
    source = str(params.get("source") or "archive")
    start, limit = int(params.get("start") or 0), int(params.get("limit") or 50)
    running = [t for t in world["tasks"].values() if t["status"] == "running"]
    order = {id(t): i for i, t in enumerate(world["tasks"].values())}  # equal ends: creation
    done = sorted(
        (t for t in world["tasks"].values() if t["status"] == "stopped"),
        key=lambda t: (t["end"], order[id(t)]),
        reverse=True,
    )
    chosen = (running if source in ("active", "all") else []) + (done if source != "active" else [])
    out: list[dict[str, Any]] = []
    for task in chosen:
        if task["node"] != node or not _visible(task, user, auditor):
            continue
        if not _matches(task, params):
            continue
        out.append(_row(world, task))
    return out[start : start + limit]


def _matches(task: dict[str, Any], params: dict[str, Any]) -> bool:
    wanted = {
        "typefilter": task["type"],
        "vmid": task["id"],
    }
    for key, have in wanted.items():
        if params.get(key) not in (None, "") and str(params[key]) != str(have):
            return False
    userfilter = str(params.get("userfilter") or "").lower()
    if userfilter and userfilter not in task["user"].lower():
        return False
    if params.get("since") is not None and task["starttime"] < int(params["since"]):
        return False
    if params.get("until") is not None and task["starttime"] > int(params["until"]):
        return False
    errors = str(params.get("errors", "0")).lower() in ("1", "true", "yes", "on")
    return not (errors and task["exitstatus"] == "OK")


def _row(world: World, task: dict[str, Any]) -> dict[str, Any]:
    upid = next(u for u, t in world["tasks"].items() if t is task)
    row = {k: task[k] for k in ("node", "pid", "pstart", "starttime", "type", "id", "user")}
    row["upid"] = upid
    if task["status"] == "running":
        row["status"] = "RUNNING"
        return row
    row["status"] = task["exitstatus"]
    row["endtime"] = int(task["end"])
    user, _, tokenid = task["user"].partition("!")
    if tokenid:
        row.update(user=user, tokenid=tokenid)
    return row
