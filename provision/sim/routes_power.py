"""VM power endpoints (status/current, start, stop, shutdown, reboot) and disk resize."""

from __future__ import annotations

import re
from typing import Any

from provision.sim import vmconfig as vc
from provision.sim.context import Ctx, Route
from provision.sim.fixture import DISK_KEY, format_size, parse_size
from provision.sim.guest import agent_enabled
from provision.sim.http import fail
from provision.sim.lifecycle import start_checks
from provision.sim.routes_cluster import vm_row
from provision.sim.routes_qemu import invariants


def _vm(ctx: Ctx) -> tuple[str, dict[str, Any]]:
    vmid = str(ctx.params["vmid"])
    return vmid, vc.vm_record(ctx.world, ctx.node(), vmid)


def _skiplock(ctx: Ctx) -> bool:
    if ctx.flag("skiplock") and not ctx.identity.is_root_ticket:
        raise fail("Only root may use this option.")
    return ctx.flag("skiplock")


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


def _start_like(ctx: Ctx, vmid: str, vm: dict[str, Any], op: str) -> dict[str, Any]:
    vc.apply_pending(vm)
    outcome = start_checks(ctx.state_dir, ctx.world, vmid, vm)
    outcome["op"] = op
    invariants(ctx)
    return outcome


def start(ctx: Ctx) -> Any:
    """POST .../status/start: checks made now, their outcome recorded in the task."""
    vmid, vm = _vm(ctx)
    vc.check_lock(vm, _skiplock(ctx))
    if vm["config"].get("template") == "1":
        raise fail("you can't start a vm if it's a template")
    memory_gib = vc.memory_mib(vm["config"]) / 1024
    timeout = float(ctx.params.get("timeout") or max(30.0, memory_gib))
    if vm["status"] == "running":
        return ctx.task("qmstart", vmid, {}, error=f"VM {vmid} already running", duration=0.0)
    outcome = _start_like(ctx, vmid, vm, "start")
    duration = ctx.durations.get("qmstart", 0.0)
    error = outcome.pop("error")
    if error is None and duration > timeout:
        error = f"start failed: command '/usr/bin/kvm -id {vmid} ...' failed: got timeout"
        duration = timeout
    warnings = outcome.pop("warnings")
    log = ["generating cloud-init ISO"] if "cloudinit" in str(vm["config"]) else []
    return ctx.task(
        "qmstart", vmid, outcome, error=error, warnings=warnings, log=log, duration=duration
    )


def stop(ctx: Ctx) -> Any:
    """POST .../status/stop: hard stop; pending changes become current."""
    vmid, vm = _vm(ctx)
    vc.check_lock(vm, _skiplock(ctx))
    return ctx.task("qmstop", vmid, {"op": "stop"})


def shutdown(ctx: Ctx) -> Any:
    """POST .../status/shutdown (timeout, forceStop)."""
    vmid, vm = _vm(ctx)
    vc.check_lock(vm, _skiplock(ctx))
    if vm["status"] != "running":
        return ctx.task("qmshutdown", vmid, {}, error=f"VM {vmid} not running", duration=0.0)
    duration = ctx.durations.get("qmshutdown", 0.0)
    timeout = float(ctx.params.get("timeout") or 180)
    error = None
    if duration > timeout:
        duration = timeout
        if not ctx.flag("forceStop"):
            error = "VM quit/powerdown failed - got timeout"
    return ctx.task("qmshutdown", vmid, {"op": "stop"}, error=error, duration=duration)


def reboot(ctx: Ctx) -> Any:
    """POST .../status/reboot: shutdown and start again, applying pending changes."""
    vmid, vm = _vm(ctx)
    vc.check_lock(vm)
    if vm["status"] != "running":
        return ctx.task("qmreboot", vmid, {}, error=f"VM {vmid} not running", duration=0.0)
    outcome = _start_like(ctx, vmid, vm, "reboot")
    return ctx.task(
        "qmreboot", vmid, outcome, error=outcome.pop("error"), warnings=outcome.pop("warnings")
    )


def resize(ctx: Ctx) -> Any:
    """PUT .../resize (size "+10G" or an absolute "40G"; shrinking refused)."""
    vmid, vm = _vm(ctx)
    disk, size = str(ctx.params["disk"]), str(ctx.params["size"])
    vc.check_digest(vm, ctx.params.get("digest"))
    vc.check_lock(vm, _skiplock(ctx))
    value = vm["config"].get(disk)
    if not DISK_KEY.fullmatch(disk) or value is None:
        raise fail(f"disk '{disk}' does not exist")
    if "media=cdrom" in value:
        raise fail("you can't resize a cdrom")
    volid = value.split(",")[0]
    sid, _, name = volid.partition(":")
    old_m = re.search(r"(?:^|,)size=([^,]+)", value)
    old = parse_size(old_m.group(1)) if old_m else 0
    new = old + parse_size(size[1:]) if size.startswith("+") else parse_size(size)
    if new < old:
        raise fail("shrinking disks is not supported")
    if name in ctx.world["volumes"].get(sid, {}):
        ctx.world["volumes"][sid][name]["size"] = new
    text = re.sub(r"(^|,)size=[^,]+", "", value)
    vm["config"][disk] = f"{text},size={format_size(new)}"
    return ctx.task("qmresize", vmid, {})


_Q = "/nodes/{node}/qemu/{vmid}"
ROUTES: list[Route] = [
    ("GET", f"{_Q}/status/current", current),
    ("POST", f"{_Q}/status/start", start),
    ("POST", f"{_Q}/status/stop", stop),
    ("POST", f"{_Q}/status/shutdown", shutdown),
    ("POST", f"{_Q}/status/reboot", reboot),
    ("PUT", f"{_Q}/resize", resize),
]
