"""VM power endpoints (status/current, start, stop, shutdown, reboot) and disk resize."""

from __future__ import annotations

import re
from typing import Any

from provision.sim import vmconfig as vc
from provision.sim.context import Ctx, Route
from provision.sim.fixture import DISK_KEY, format_size, parse_size
from provision.sim.guest import agent_enabled
from provision.sim.http import ApiFailure, fail, param_fail
from provision.sim.lifecycle import start_task
from provision.sim.routes_cluster import vm_row
from provision.sim.routes_qemu import invariants


def _vm(ctx: Ctx) -> tuple[str, dict[str, Any]]:
    vmid = str(ctx.params["vmid"])
    return vmid, vc.vm_record(ctx.world, ctx.node(), vmid)


def _skiplock(ctx: Ctx) -> bool:
    """qemu-server PVE/API2/Qemu.pm (vm_start, vm_stop, vm_shutdown, …): skiplock from
    anyone but root@pam is raise_param_exc (HTTP 400)."""
    if ctx.flag("skiplock") and not ctx.identity.is_root_ticket:
        raise param_fail({"skiplock": "Only root may use this option."})
    return ctx.flag("skiplock")


def _stop_like(ctx: Ctx, kind: str, duration: float | None = None, error: str | None = None) -> Any:
    """qemu-server PVE/QemuServer.pm vm_stop/_do_vm_stop, run in the qmstop/qmshutdown
    worker: a VM that is not running ends the task OK at once (nothing is checked); the
    lock check happens in the worker, so a locked VM's task fails."""
    vmid, vm = _vm(ctx)
    skiplock = _skiplock(ctx)
    if vm["status"] != "running":
        return ctx.task(kind, vmid, {}, duration=0.0)
    lock = vm["config"].get("lock")
    if lock and not skiplock:
        return ctx.task(kind, vmid, {}, error=f"VM is locked ({lock})", duration=0.0)
    return ctx.task(kind, vmid, {"op": "stop"}, error=error, duration=duration)


def _start_refusal(vmid: str, vm: dict[str, Any], skiplock: bool) -> str | None:
    """What qemu-server's vm_start (src/PVE/QemuServer.pm) refuses under the config lock,
    inside the qmstart worker (the API call itself answers with the UPID): a template,
    a locked VM, a running one."""
    if vm["config"].get("template") == "1":
        return "you can't start a vm if it's a template"
    lock = vm["config"].get("lock")
    if lock and not skiplock and lock != "suspended":
        return f"VM is locked ({lock})"
    if vm["status"] == "running":
        return f"VM {vmid} already running"
    return None


def current(ctx: Ctx) -> Any:
    """GET .../status/current."""
    vmid, vm = _vm(ctx)
    row = vm_row(ctx, vmid, vm)
    out = {
        k: row[k]
        for k in (
            "vmid",
            "name",
            "status",
            "maxmem",
            "mem",
            "cpus",
            "uptime",
            "cpu",
            "maxdisk",
            "disk",
            "netin",
            "netout",
        )
    }
    out["qmpstatus"] = vm["status"]
    out["ha"] = {"managed": 0}
    out["agent"] = int(agent_enabled(vm["config"]))
    if row.get("template"):
        out["template"] = 1
    for key in ("lock", "tags"):
        if key in vm["config"]:
            out[key] = vm["config"][key]
    if vm["status"] == "running":
        out["pid"] = 10000 + int(vmid)
        out["running-machine"] = vm["config"].get("machine", "pc-i440fx-9.2")
    return out


def start(ctx: Ctx) -> Any:
    """POST .../status/start: checks made now, their outcome recorded in the task. The
    default timeout is qemu-server's `config_aware_timeout` of the config being started."""
    vmid, vm = _vm(ctx)
    refused = _start_refusal(vmid, vm, _skiplock(ctx))
    if refused:
        return ctx.task("qmstart", vmid, {}, error=refused, duration=0.0)
    vc.apply_pending(vm)
    given = ctx.params.get("timeout")
    timeout = float(given) if given is not None else vc.config_aware_timeout(vm["config"])
    duration = ctx.durations.get("qmstart", 0.0)
    made = start_task(ctx.state_dir, ctx.world, vmid, vm, duration, timeout)
    invariants(ctx)
    return ctx.task(
        "qmstart",
        vmid,
        made["effect"],
        error=made["error"],
        warnings=made["warnings"],
        log=made["log"],
        duration=made["duration"],
    )


def stop(ctx: Ctx) -> Any:
    """POST .../status/stop: hard stop; pending changes become current."""
    return _stop_like(ctx, "qmstop")


def shutdown(ctx: Ctx) -> Any:
    """POST .../status/shutdown (timeout, forceStop)."""
    duration = ctx.durations.get("qmshutdown", 0.0)
    timeout = float(ctx.params.get("timeout") or 180)
    error = None
    if duration > timeout:
        duration = timeout
        if not ctx.flag("forceStop"):
            error = "VM quit/powerdown failed - got timeout"
    return _stop_like(ctx, "qmshutdown", duration, error)


def reboot(ctx: Ctx) -> Any:
    """POST .../status/reboot: only a shutdown, as qemu-server does it.

    PVE/API2/Qemu.pm `vm_reboot` refuses a stopped VM before forking; its qmreboot worker
    (PVE/QemuServer.pm `vm_reboot` -> `_do_vm_stop`, shutdown mode) checks the lock, writes
    the reboot request and waits `timeout` (default 60 s) for the guest to power off,
    applying pending changes ("VM quit/powerdown failed - got timeout" past it). The
    restart is a separate qmstart task by `qm cleanup` (lifecycle._restart): the reboot
    task ends OK even when that start fails.
    """
    vmid, vm = _vm(ctx)
    if vm["status"] != "running":
        raise fail(f"VM {vmid} not running")
    error = vm["config"].get("lock") and f"VM is locked ({vm['config']['lock']})"
    given = ctx.params.get("timeout")
    timeout = float(given) if given is not None else 60.0
    duration = ctx.durations.get("qmreboot", 0.0)  # the guest's own shutdown
    if not error and (timeout <= 0 or duration > timeout):
        error, duration = "VM quit/powerdown failed - got timeout", timeout
    effect = {
        "op": "reboot",
        "state_dir": str(ctx.state_dir),
        "restart_duration": ctx.durations.get("qmstart", 0.0),
    }
    return ctx.task("qmreboot", vmid, effect, error=error or None, duration=duration)


def resize(ctx: Ctx) -> Any:
    """PUT .../resize (size "+10G" or an absolute "40G"; shrinking refused).

    qemu-server resize_vm checks only skiplock before it forks a worker of type `resize`;
    digest, lock, the disk, Datastore.AllocateSpace and a shrink are refused inside it,
    so the answer is a UPID and the task fails."""
    vmid, vm = _vm(ctx)
    skiplock = _skiplock(ctx)
    try:
        _resize_now(ctx, vm, skiplock)
    except ApiFailure as exc:
        return ctx.task("resize", vmid, {}, error=exc.message)
    return ctx.task("resize", vmid, {})


def _resize_now(ctx: Ctx, vm: dict[str, Any], skiplock: bool) -> None:
    disk, size = str(ctx.params["disk"]), str(ctx.params["size"])
    vc.check_digest(vm, ctx.params.get("digest"))
    vc.check_lock(vm, skiplock)
    value = vm["config"].get(disk)
    if not DISK_KEY.fullmatch(disk) or value is None:
        raise fail(f"disk '{disk}' does not exist")
    if "media=cdrom" in value:
        raise fail("you can't resize a cdrom")
    volid = value.split(",")[0]
    sid, _, name = volid.partition(":")
    ctx.require(f"/storage/{sid}", ["Datastore.AllocateSpace"])
    old_m = re.search(r"(?:^|,)size=([^,]+)", value)
    old = parse_size(old_m.group(1)) if old_m else 0
    new = old + parse_size(size[1:]) if size.startswith("+") else parse_size(size)
    if new < old:
        raise fail("shrinking disks is not supported")
    if name in ctx.world["volumes"].get(sid, {}):
        ctx.world["volumes"][sid][name]["size"] = new
    text = re.sub(r"(^|,)size=[^,]+", "", value)
    vm["config"][disk] = f"{text},size={format_size(new)}"


_Q = "/nodes/{node}/qemu/{vmid}"
ROUTES: list[Route] = [
    ("GET", f"{_Q}/status/current", current),
    ("POST", f"{_Q}/status/start", start),
    ("POST", f"{_Q}/status/stop", stop),
    ("POST", f"{_Q}/status/shutdown", shutdown),
    ("POST", f"{_Q}/status/reboot", reboot),
    ("PUT", f"{_Q}/resize", resize),
]
