"""POST /nodes/{node}/qemu/{vmid}/template: a VM (or one of its disks) made a template."""

from __future__ import annotations

from typing import Any

from provision.sim import vmconfig as vc
from provision.sim.context import Ctx
from provision.sim.fixture import DISK_KEY
from provision.sim.http import fail


def template(ctx: Ctx) -> Any:
    """POST /nodes/{node}/qemu/{vmid}/template: qemu-server PVE/API2/Qemu.pm `template`.

    VM.Allocate on /vms/{vmid} (perms.py); `$load_and_check` before the fork: the lock,
    "you can't convert a template to a template" (unless `disk` names one disk to
    convert), "you can't convert a VM to template if VM is running"; the worker sets
    `template: 1` and PVE/QemuServer.pm `template_create` makes each disk (or only
    `disk`) a base volume (vm-N-disk-M -> base-N-disk-M)."""
    node, vmid = ctx.node(), str(ctx.params["vmid"])
    vm = vc.vm_record(ctx.world, node, vmid)
    vc.check_lock(vm)
    only = ctx.params.get("disk")
    if vm["config"].get("template") == "1" and not only:
        raise fail("you can't convert a template to a template")
    if vm["status"] == "running":
        raise fail("you can't convert a VM to template if VM is running")
    for key, value in list(vm["config"].items()):
        volid = value.split(",")[0]
        if only and key != only:
            continue
        if DISK_KEY.fullmatch(key) and "-disk-" in volid and "base-" not in volid:
            sid, _, name = volid.partition(":")
            base = name.replace(f"vm-{vmid}-disk-", f"base-{vmid}-disk-")
            vols = ctx.world["volumes"].get(sid, {})
            vols[base] = vols.pop(name, {"size": 0, "vmid": int(vmid), "format": "raw"})
            vm["config"][key] = value.replace(volid, f"{sid}:{base}", 1)
    vm["config"]["template"] = "1"
    return ctx.task("qmtemplate", vmid, {})
