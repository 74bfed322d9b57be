"""Cluster-wide and node endpoints: version, nodes, resources, nextid, status, node
config (a compare-and-set register), PCI hardware, and the access endpoints."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from provision.sim import faults
from provision.sim.context import Ctx, Route
from provision.sim.http import fail, param_fail
from provision.sim.pvestatd import rrd_dump, vm_resource, vmstatus
from provision.sim.vmconfig import memory_mib

VERSION = {"version": "9.1.3", "release": "9.1", "repoid": "e5010dcea566"}


def version(ctx: Ctx) -> Any:
    """GET /version: 9.1.3, or the fixture's `version:` (an older node, e.g. "8.3.5")."""
    given = str(ctx.world.get("version") or VERSION["version"])
    if given == VERSION["version"]:
        return dict(VERSION)
    return {**VERSION, "version": given, "release": ".".join(given.split(".")[:2])}


def _node_row(ctx: Ctx, name: str) -> dict[str, Any]:
    spec = ctx.world["nodes"][name]
    online = name not in faults.offline_nodes(ctx.world)
    row: dict[str, Any] = {
        "node": name,
        "id": f"node/{name}",
        "type": "node",
        "level": "",
        "status": "online" if online else "offline",
    }
    if online:
        used = sum(
            _vm_mem(vm)
            for vm in ctx.world["vms"].values()
            if vm["node"] == name and vm["status"] == "running"
        )
        row.update(
            maxcpu=spec["cpus"],
            maxmem=spec["memory"],
            mem=used + 4 * 1024**3,
            cpu=0.02,
            uptime=int(ctx.now - ctx.world["created"]) + 86400,
        )
    return row


def _vm_mem(vm: dict[str, Any]) -> int:
    return memory_mib(vm["config"]) * 1024**2


def nodes(ctx: Ctx) -> Any:
    """GET /nodes."""
    return [_node_row(ctx, n) for n in sorted(ctx.world["nodes"])]


_KERNEL = {  # POSIX::uname of a PVE 9 node
    "sysname": "Linux",
    "release": "6.14.11-4-pve",
    "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4 (2025-10-10T08:04Z)",
    "machine": "x86_64",
}


def node_status(ctx: Ctx) -> Any:
    """GET /nodes/{node}/status: every key pve-manager PVE/API2/Nodes.pm `status` sets
    (uptime/idle, loadavg, kversion "SYSNAME RELEASE VERSION" and current-kernel from
    uname, boot-info, cpuinfo, cpu/wait, memory, ksm, swap, pveversion, rootfs)."""
    row = _node_row(ctx, ctx.node())
    total, used = row["maxmem"], row["mem"]
    rootfs_total, rootfs_used = 100 * 1024**3, 12 * 1024**3
    return {
        "uptime": row["uptime"],
        "idle": 0,
        "loadavg": ["0.12", "0.08", "0.05"],  # read_loadavg: the text of /proc/loadavg
        "kversion": " ".join(_KERNEL[k] for k in ("sysname", "release", "version")),
        "current-kernel": dict(_KERNEL),
        "boot-info": {"mode": "efi", "secureboot": 0},
        "cpuinfo": {
            "cpus": row["maxcpu"],
            "cores": row["maxcpu"],
            "sockets": 1,
            "model": "Simulated CPU",
        },
        "cpu": row["cpu"],
        "wait": 0,
        "memory": {"total": total, "used": used, "free": total - used, "available": total - used},
        "ksm": {"shared": 0},
        "swap": {"total": 0, "used": 0, "free": 0},
        "pveversion": f"pve-manager/{VERSION['version']}/{VERSION['repoid']}",
        "rootfs": {
            "total": rootfs_total,
            "used": rootfs_used,
            "avail": rootfs_total - rootfs_used,
            "free": rootfs_total - rootfs_used,
        },
    }


def vm_row(ctx: Ctx, vmid: str, vm: dict[str, Any]) -> dict[str, Any]:
    """One VM as qemu-server `vmstatus` reports it, live (/nodes/{node}/qemu, status)."""
    return vmstatus(ctx.world, ctx.now, vmid, vm)


def resources(ctx: Ctx) -> Any:
    """GET /cluster/resources (type=vm|node|storage; VMs filtered by VM.Audit).

    VMs: vmid/node/type live, the rest from pvestatd's last broadcast (sim/pvestatd.py).
    """
    from provision.sim.storage import storage_status

    kind = ctx.params.get("type")
    out: list[dict[str, Any]] = []
    if kind in (None, "vm"):
        lines = rrd_dump(ctx.world, ctx.now)
        for vmid, vm in sorted(ctx.world["vms"].items(), key=lambda kv: int(kv[0])):
            if "VM.Audit" in ctx.identity.privileges(f"/vms/{vmid}"):
                out.append(vm_resource(lines, vmid, vm))
    if kind in (None, "node"):
        out += [_node_row(ctx, n) for n in sorted(ctx.world["nodes"])]
    if kind in (None, "storage"):
        for node in sorted(ctx.world["nodes"]):
            for sid, spec in sorted(ctx.world["storages"].items()):
                if spec.get("nodes") and node not in spec["nodes"]:
                    continue
                st = storage_status(ctx.state_dir, ctx.world, sid)
                out.append(
                    {
                        "id": f"storage/{node}/{sid}",
                        "type": "storage",
                        "storage": sid,
                        "node": node,
                        "content": spec["content"],
                        "plugintype": spec["type"],
                        "shared": spec["shared"],
                        "status": "available",
                        "maxdisk": st["total"],
                        "disk": st["used"],
                    }
                )
    return out


def nextid(ctx: Ctx) -> Any:
    """GET /cluster/nextid: the id as a string, as Proxmox returns it."""
    used = {int(v) for v in ctx.world["vms"]}
    if "vmid" in ctx.params:
        if int(ctx.params["vmid"]) in used:
            raise param_fail({"vmid": f"VM {ctx.params['vmid']} already exists"})
        return str(ctx.params["vmid"])
    candidate = 100
    while candidate in used:
        candidate += 1
    return str(candidate)


def cluster_status(ctx: Ctx) -> Any:
    """GET /cluster/status."""
    names = sorted(ctx.world["nodes"])
    offline = faults.offline_nodes(ctx.world)
    out: list[dict[str, Any]] = []
    cluster = ctx.world.get("cluster") or {}
    if cluster.get("name"):
        out.append(
            {
                "type": "cluster",
                "id": "cluster",
                "name": cluster["name"],
                "nodes": len(names),
                "quorate": 1,
                "version": len(names),
            }
        )
    for index, name in enumerate(names):
        out.append(
            {
                "type": "node",
                "id": f"node/{name}",
                "name": name,
                "nodeid": index + 1,
                "online": int(name not in offline),
                "local": int(index == 0),
                "ip": f"192.168.1.{10 + index}",
                "level": "",
            }
        )
    return out


def _node_digest(config: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()


def node_config_get(ctx: Ctx) -> Any:
    """GET /nodes/{node}/config (with digest)."""
    config = dict(ctx.world["nodes"][ctx.node()]["config"])
    out = {k: v for k, v in config.items() if v != ""}
    out["digest"] = _node_digest(config)
    prop = ctx.params.get("property")
    return {prop: out[prop]} if prop and prop in out else out if not prop else {}


def node_config_put(ctx: Ctx) -> Any:
    """PUT /nodes/{node}/config: description (and delete) with an optional digest."""
    config = ctx.world["nodes"][ctx.node()]["config"]
    given = ctx.params.get("digest")
    if given and given != _node_digest(config):
        raise fail("detected modified configuration - file changed by other user? Try again.")
    for key in str(ctx.params.get("delete", "")).split(","):
        if key:
            config[key] = ""
    if "description" in ctx.params:
        config["description"] = stored_notes(str(ctx.params["description"]))
    return None


def stored_notes(text: str) -> str:
    """A node description as it reads back: pve-manager PVE/NodeConfig.pm
    write_node_config writes each line as an encoded '#' comment (Perl split drops
    trailing empty lines), pve-common PVE::JSONSchema::parse_config reads the comments
    back with trailing spaces cut and a newline after every line."""
    lines = text.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    return "".join(line.rstrip(" ") + "\n" for line in lines)


DEFAULT_CLASS_BLACKLIST = "05;06;0b"
_TERSE = ("id", "vendor", "device", "class", "iommugroup", "mdev")


def hardware_pci(ctx: Ctx) -> Any:
    """GET /nodes/{node}/hardware/pci: pve-manager PVE/API2/Hardware/PCI.pm pci_scan with
    pve-common PVE/SysFSTools.pm lspci: classes in `pci-class-blacklist` (default
    "05;06;0b": memory controllers, bridges, processors) left out, sorted by id, `mdev`
    1 only when capable, names and subsystem ids only with verbose (default 1)."""
    blacklist = str(ctx.params.get("pci-class-blacklist", DEFAULT_CLASS_BLACKLIST))
    classes = [c for c in re.split(r"[;,\s]+", blacklist) if c]
    verbose = ctx.flag("verbose", default=True)
    out = []
    for dev in sorted(ctx.world["nodes"][ctx.node()]["pci"], key=lambda d: d["id"]):
        if any(str(dev["class"]).startswith(f"0x{c}") for c in classes):
            continue
        row = {k: v for k, v in dev.items() if k not in ("gpu", "mdev")}
        row.setdefault("iommugroup", -1)
        row.setdefault("subsystem_vendor", "0x0000")
        row.setdefault("subsystem_device", "0x0000")
        if dev.get("mdev"):
            row["mdev"] = 1
        out.append(row if verbose else {k: v for k, v in row.items() if k in _TERSE})
    return out


ROUTES: list[Route] = [
    ("GET", "/version", version),
    ("GET", "/nodes", nodes),
    ("GET", "/nodes/{node}/status", node_status),
    ("GET", "/cluster/resources", resources),
    ("GET", "/cluster/nextid", nextid),
    ("GET", "/cluster/status", cluster_status),
    ("GET", "/nodes/{node}/config", node_config_get),
    ("PUT", "/nodes/{node}/config", node_config_put),
    ("GET", "/nodes/{node}/hardware/pci", hardware_pci),
]
