"""What each node's pvestatd reports, and how /cluster/resources shows it.

Proxmox has two views of a VM:
- live: qemu-server `PVE::QemuServer::vmstatus` (src/PVE/QemuServer.pm) reads the VM
  configs and pid files of the node it runs on. `GET /nodes/{node}/qemu` (`vmlist` in
  src/PVE/API2/Qemu.pm) and `GET .../status/current` answer from it.
- broadcast: pvestatd (pve-manager PVE/Service/pvestatd.pm, `update_qemu_status`, one
  cycle every `$updatetime = 10` s) runs vmstatus and broadcasts per VM an RRD line
  (uptime, name, status, template, ctime, cpus, cpu, maxmem, mem, maxdisk, disk, netin,
  netout, diskread, diskwrite, memhost). pmxcfs keeps the last line per vmid and drops
  lines older than 5 minutes (pve-cluster src/pmxcfs/status.c `rrd_entry_is_old`).
  `GET /cluster/resources` (pve-manager PVE/API2/Cluster.pm `resources`) lists the
  vmids, node and type of the live cluster vmlist and fills everything else from that
  line (PVE/API2Tools.pm `extract_vm_stats`): without a line a VM has `status: unknown`
  and no name. Only `lock` and `tags` are read live from the configs
  (`get_guest_config_properties([qw(lock tags)])`).

The simulator keeps the last line per vmid in world["rrd"]. Broadcasts happen at
world["created"] + k * interval (the durations key "pvestatd", 10 s by default; 0 means
at every request, a huge value means effectively never after the first). Nothing runs in
the background: each request first replays the last broadcast it has passed
(`catch_up`), with the tasks that ended before it applied first.
"""

from __future__ import annotations

import math
import re
from typing import Any

from provision.sim import faults
from provision.sim.fixture import parse_size
from provision.sim.state import World
from provision.sim.tasks import Apply, advance
from provision.sim.vmconfig import memory_mib

EXPIRE = 300.0  # pmxcfs status.c rrd_entry_is_old: "remove everything older than 5 minutes"
# The RRD line's fields as extract_vm_stats names them (pve-vm-9.0 key: memhost too).
RRD_FIELDS = (
    "uptime",
    "name",
    "status",
    "template",
    "maxcpu",
    "cpu",
    "maxmem",
    "mem",
    "maxdisk",
    "disk",
    "netin",
    "netout",
    "diskread",
    "diskwrite",
    "memhost",
)


def _bootdisk_size(config: dict[str, str]) -> int | None:
    """qemu-server Drive.pm `bootdisk_size`: the size= of the first non-CD boot disk."""
    boot = config.get("boot", "")
    order = re.search(r"(?:^|,)order=([^,]+)", boot)
    disks = (
        order.group(1).split(";")
        if order
        else ([config["bootdisk"]] if config.get("bootdisk") else [])
    )
    for disk in disks:
        value = config.get(disk)
        if not value or "media=cdrom" in value or value.startswith("none"):
            continue
        size = re.search(r"(?:^|,)size=([^,]+)", value)
        return parse_size(size.group(1)) if size else None
    return None


def vmstatus(
    world: World, now: float, vmid: str, vm: dict[str, Any], full: bool = False
) -> dict[str, Any]:
    """One VM as qemu-server `vmstatus` reports it: live config values and run state;
    `full` adds what QMP tells (qmpstatus, running-machine, running-qemu)."""
    config = vm["config"]
    running = vm["status"] == "running"
    cpus = int(config.get("sockets", 1)) * int(config.get("cores", 1))
    cpus = min(cpus, int(world["nodes"][vm["node"]]["cpus"]))
    if config.get("vcpus"):
        cpus = int(config["vcpus"])
    maxmem = memory_mib(config) * 1024**2
    size = _bootdisk_size(config)
    row: dict[str, Any] = {
        "vmid": int(vmid),
        "status": "running" if running else "stopped",
        "maxdisk": size or 0,
        "disk": 0,
        "cpus": cpus,
        "name": config.get("name") or f"VM {vmid}",
        "maxmem": maxmem,
        "uptime": int(now - vm["started_at"]) if running and vm.get("started_at") else 0,
        "cpu": 0,
        "mem": maxmem // 2 if running else 0,
        "memhost": maxmem // 2 if running else 0,
        "netout": 0,
        "netin": 0,
    }
    if config.get("balloon"):
        row["balloon_min"] = int(config["balloon"]) * 1024**2
        row["shares"] = int(config.get("shares", 1000))
    if config.get("template") == "1":
        row["template"] = 1
    if any(re.fullmatch(r"serial\d", key) for key in config):
        row["serial"] = 1
    if config.get("lock"):
        row["lock"] = config["lock"]
    if config.get("tags") is not None:
        row["tags"] = config["tags"]
    if running:
        row["pid"] = 10000 + int(vmid)
    if full:
        row["qmpstatus"] = row["status"]
        if running:
            row["running-machine"] = config.get("machine", "pc-i440fx-9.2")
            row["running-qemu"] = "9.2.0"
    return row


def broadcast(world: World, at: float) -> None:
    """One pvestatd cycle on every online node: the RRD line of each of its VMs."""
    offline = faults.offline_nodes(world)
    lines = world.setdefault("rrd", {})
    for vmid, vm in world["vms"].items():
        if vm["node"] in offline:
            continue
        d = vmstatus(world, at, vmid, vm)
        running = d["status"] == "running"
        lines[vmid] = {
            "time": at,
            "uptime": d["uptime"] if running else 0,
            "name": d["name"],
            "status": d["status"],  # $d->{qmpstatus} || $d->{status}
            "template": int(d.get("template", 0)),
            "maxcpu": d["cpus"],
            "cpu": d["cpu"] if running else 0,
            "maxmem": d["maxmem"],
            "mem": d["mem"] if running else 0,
            "maxdisk": d["maxdisk"],
            "disk": d["disk"],
            "netin": d["netin"] if running else 0,
            "netout": d["netout"] if running else 0,
            "diskread": 0,
            "diskwrite": 0,
            "memhost": d["memhost"] if running else 0,
        }


def last_broadcast(world: World, now: float, interval: float) -> float:
    """When the last pvestatd cycle at or before now ran (now itself when interval <= 0)."""
    if interval <= 0:
        return now
    created = float(world["created"])
    return created + math.floor(max(now - created, 0.0) / interval) * interval


def catch_up(world: World, now: float, interval: float, apply: Apply) -> None:
    """Bring the world to now: tasks due by the last broadcast, that broadcast (if not
    recorded yet), then the tasks due by now."""
    tick = last_broadcast(world, now, interval)
    seen = world.get("pvestatd_tick")
    if interval <= 0 or seen is None or tick > float(seen):
        advance(world, tick, apply)
        broadcast(world, tick)
        world["pvestatd_tick"] = tick
    advance(world, now, apply)


def rrd_dump(world: World, now: float) -> dict[str, Any]:
    """The RRD lines pmxcfs hands out (cfs_rrd_dump): lines older than 5 minutes dropped."""
    lines: dict[str, Any] = world.setdefault("rrd", {})
    for key in [k for k, line in lines.items() if now - float(line["time"]) > EXPIRE]:
        del lines[key]
    return lines


def vm_resource(lines: dict[str, Any], vmid: str, vm: dict[str, Any]) -> dict[str, Any]:
    """One VM of /cluster/resources: vmlist (live) + RRD line (broadcast) + lock/tags (live).

    pve-manager PVE/API2Tools.pm `extract_vm_stats`, PVE/API2/Cluster.pm `resources`.
    """
    entry: dict[str, Any] = {
        "id": f"qemu/{vmid}",
        "vmid": int(vmid),
        "node": vm["node"],
        "type": "qemu",
        "status": "unknown",
    }
    line = lines.get(vmid)
    if line is not None:
        entry.update({key: line[key] for key in RRD_FIELDS})
    for key in ("lock", "tags"):
        if vm["config"].get(key) is not None:
            entry[key] = vm["config"][key]
    return entry
