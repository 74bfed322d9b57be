"""QEMU VM endpoints: list, create, destroy, clone, template, config and pending."""

from __future__ import annotations

import copy
import random
import re
from typing import Any

from provision.sim import storage as st
from provision.sim import virtiofs
from provision.sim import vmconfig as vc
from provision.sim.configperm import bridge_access, clone_storage_access, mapping_access
from provision.sim.context import Ctx, Route
from provision.sim.fixture import DISK_KEY, new_vm
from provision.sim.http import ApiFailure, fail, param_fail
from provision.sim.netnorm import normalise_options
from provision.sim.pci import record_invariants
from provision.sim.pvestatd import vmstatus
from provision.sim.vmtemplate import template
from provision.sim.vmwrite import (
    clone_disks,
    create_checks,
    create_worker_error,
    materialize,
    unuse_disks,
    update_checks,
    update_worker_checks,
)


def invariants(ctx: Ctx) -> None:
    """Run the GPU invariant monitor over every VM's config as it now reads."""
    record_invariants(ctx.world, {vmid: vc.effective(vm) for vmid, vm in ctx.world["vms"].items()})


def vm_list(ctx: Ctx) -> Any:
    """GET /nodes/{node}/qemu (VMs the caller may audit): qemu-server PVE/API2/Qemu.pm
    `vmlist` -> PVE::QemuServer::vmstatus, live (sim/pvestatd.py)."""
    node = ctx.node()
    full = ctx.flag("full")
    return [
        vmstatus(ctx.world, ctx.now, vmid, vm, full)
        for vmid, vm in sorted(ctx.world["vms"].items())
        if vm["node"] == node and "VM.Audit" in ctx.identity.privileges(f"/vms/{vmid}")
    ]


# clone_vm's "# qmclone temporary file\nlock: clone\n" as parse_vm_config reads it: a
# comment line is the description (decode_text of what follows "#", trailing space cut)
CLONE_TEMP = {"description": " qmclone temporary file", "lock": "clone"}


def _exists(ctx: Ctx, vmid: str) -> None:
    if vmid in ctx.world["vms"]:
        raise fail(f"unable to create VM {vmid}: config file already exists")


def create(ctx: Ctx) -> Any:
    """POST /nodes/{node}/qemu: a qmcreate task; meanwhile the VM's config is `lock: create`
    and nothing else.

    qemu-server create_vm: VM.Allocate, $check_storage_access, then the option checks
    (configperm) before the fork; then pve-guest-common AbstractConfig.pm
    `create_and_lock_config` writes a config holding only `lock: create` (so the VM lists
    as "VM N", no name, no tags: QemuServer.pm `vmstatus`), and the worker's `$createfn`
    writes the whole config (without the lock) once its disks are made (lifecycle.py
    `apply_task`). A refusal in the worker (tags) fails the task, and the worker's cleanup
    (`unlink($conffile)`) removes the half-made VM again."""
    node, vmid = ctx.node(), str(ctx.params["vmid"])
    ctx.require(f"/vms/{vmid}", ["VM.Allocate"])
    options = vc.option_values(ctx.params)
    materialize(ctx, vmid, options, allocate=False)
    create_checks(ctx, vmid, options)
    _exists(ctx, vmid)
    error = create_worker_error(ctx, vmid, options)
    options = normalise_options(options)  # qemu-server add_random_macs
    options, volumes = materialize(ctx, vmid, options)
    options.setdefault("vmgenid", _uuid())
    options.setdefault("smbios1", f"uuid={_uuid()}")
    options["meta"] = f"creation-qemu=9.2.0,ctime={int(ctx.now)}"
    ctx.world["vms"][vmid] = new_vm(node, {"lock": "create"})
    effect = {
        "op": "create",
        "config": options,
        "volumes": volumes,
        "start": ctx.flag("start"),
        "state_dir": str(ctx.state_dir),
    }
    return ctx.task("qmcreate", vmid, effect, error=error)


def _uuid() -> str:
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def destroy(ctx: Ctx) -> Any:
    """DELETE /nodes/{node}/qemu/{vmid}: qemu-server PVE/API2/Qemu.pm destroy_vm.

    skiplock is root@pam's only (a 400); the early checks (protection, running) answer
    before the worker; the lock check and the linked-clone check of a template run in
    the `qmdestroy` worker (PVE/QemuServer.pm destroy_vm), which fails the task.
    """
    node, vmid = ctx.node(), str(ctx.params["vmid"])
    skiplock = ctx.flag("skiplock")
    if skiplock and ctx.identity.auth_id != "root@pam":
        raise param_fail({"skiplock": "Only root may use this option."})
    vm = vc.vm_record(ctx.world, node, vmid)
    protected = str(vm["config"].get("protection", "0")).lower() in ("1", "on", "yes", "true")
    if protected:  # qemu-server PVE/QemuConfig.pm check_protection
        raise fail(f"can't remove VM {vmid} - protection mode enabled")
    if vm["status"] == "running":
        raise fail(f"VM {vmid} is running - destroy failed")
    lock = vm["config"].get("lock")
    error = None
    if lock and not skiplock and lock != "suspended":
        error = f"VM is locked ({lock})"
    elif vm["config"].get("template") == "1":
        error = _base_in_use(ctx, vmid, vm)
    if error is None:
        vm["config"]["lock"] = "destroyed"
    effect = {"op": "destroy", "unreferenced": ctx.flag("destroy-unreferenced-disks")}
    return ctx.task("qmdestroy", vmid, effect, error=error)


def _base_in_use(ctx: Ctx, vmid: str, vm: dict[str, Any]) -> str | None:
    """qemu-server destroy_vm: a template's base volume still used by a linked clone."""
    for key, value in vm["config"].items():
        volid = value.split(",")[0]
        leaf = volid.partition(":")[2].rsplit("/", 1)[-1]
        if not (DISK_KEY.fullmatch(key) and leaf.startswith("base-")):
            continue
        for other, ovm in ctx.world["vms"].items():
            if other != vmid and any(f"{volid}/" in v for v in ovm["config"].values()):
                return f"base volume '{volid}' is still in use by linked cloned"
    return None


def clone(ctx: Ctx) -> Any:
    """POST /nodes/{node}/qemu/{vmid}/clone: until the task ends the new VM's config is
    clone_vm's temporary file, on the source's node.

    qemu-server clone_vm's $load_and_check runs before the fork, in this order: lock,
    linked-clone parameters, storage access ($check_storage_access_clone), then
    check_mapping_access and check_bridge_access on the source's config (so a template on
    vmbr0 needs SDN.Use on /sdn/zones/localnetwork/vmbr0 to be cloned), and only then
    "can't clone VM to node" and the new config file's existence; then, per drive, a linked
    clone needs a volume with the `clone` feature (pve-storage volume_has_feature: a base
    volume). The worker's `$clonefn` first writes "# qmclone temporary file\nlock: clone\n"
    (read back as that description and the lock: no name, no tags), and the new config
    (name, description, disks) with the lock removed at its end, moved to the target node
    then (lifecycle.py `apply_task`). It also writes the whole config still locked after
    each disk but the last: the simulator shows the temporary file throughout, as
    Proxmox does for a template with one disk."""
    node, vmid, newid = ctx.node(), str(ctx.params["vmid"]), str(ctx.params["newid"])
    vm = vc.vm_record(ctx.world, node, vmid)
    target = ctx.node(str(ctx.params.get("target") or node))
    vc.check_lock(vm)
    template = vm["config"].get("template") == "1"
    full = ctx.flag("full", default=not template)
    if not full and ctx.params.get("storage"):
        raise fail("parameter 'storage' not allowed for linked clones")
    storage = str(ctx.params["storage"]) if full and ctx.params.get("storage") else None
    shared = _clone_access(ctx, vm["config"], storage)
    if target != node and not shared:
        raise fail(f"can't clone VM to node '{target}' (VM uses local storage)")
    _exists(ctx, newid)
    if not full:
        st.check_linked_clone(ctx.world, vm["config"])
    config = {k: v for k, v in vc.effective(vm).items() if k not in ("template", "lock")}
    volumes = clone_disks(ctx, config, newid, storage if full else None, full)
    for key, value in list(config.items()):
        if key.startswith("net"):
            config[key] = re.sub(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", _mac(), value, count=1)
    config.update(
        name=str(ctx.params.get("name") or f"Copy-of-VM-{config.get('name', vmid)}"),
        vmgenid=_uuid(),
    )
    if ctx.params.get("description"):  # clone_vm: `if ($param->{description})`
        config["description"] = str(ctx.params["description"])
    ctx.world["vms"][newid] = new_vm(node, dict(CLONE_TEMP))
    if vm.get("disk"):  # what the guest did to its disk (guest_disk): the copy has it too
        ctx.world["vms"][newid]["disk"] = copy.deepcopy(vm["disk"])
    effect = {
        "op": "clone",
        "config": config,
        "volumes": volumes,
        "target_vmid": newid,
        "target": target,
    }
    return ctx.task("qmclone", vmid, effect, node=node)


def _clone_access(ctx: Ctx, config: dict[str, str], storage: str | None) -> bool:
    """clone_vm's access checks on the source's config, in its order; True when the
    storage is shared."""
    shared = clone_storage_access(ctx, config, storage)
    mapping_access(ctx, config)
    virtiofs.mapping_access(ctx, config)
    bridge_access(ctx, config)
    return shared


def _mac() -> str:
    return "BC:24:11:" + ":".join(f"{random.randrange(256):02X}" for _ in range(3))


def config_get(ctx: Ctx) -> Any:
    """GET .../config: pending values shown unless current=1; with digest."""
    vm = vc.vm_record(ctx.world, ctx.node(), ctx.params["vmid"])
    shown = vm["config"] if ctx.flag("current") else vc.effective(vm)
    return {**vc.typed(shown), "digest": vc.digest(vm)}


def pending(ctx: Ctx) -> Any:
    """GET .../pending."""
    return vc.pending_list(vc.vm_record(ctx.world, ctx.node(), ctx.params["vmid"]))


def _config_write(ctx: Ctx, worker: bool) -> str | None:
    """update_vm_api: the checks before the fork, then $updatefn's. With worker (POST) a
    refusal in $updatefn is returned as the task's error and nothing is written; without
    (PUT, synchronous) it is the answer."""
    node, vmid = ctx.node(), str(ctx.params["vmid"])
    vm = vc.vm_record(ctx.world, node, vmid)
    skiplock = ctx.flag("skiplock")
    if skiplock and not ctx.identity.is_root_ticket:
        raise param_fail({"skiplock": "Only root may use this option."})
    changes = vc.option_values(ctx.params)
    deletes = vc.split_delete(ctx.params.get("delete"))
    if not changes and not deletes and not ctx.params.get("revert"):
        raise fail("no options specified")
    for key in sorted(set(changes) & set(deletes)):
        raise param_fail({"delete": f"you can't use '-{key}' and -delete {key}' at the same time"})
    update_checks(ctx, vmid, changes, deletes)
    vc.check_digest(vm, ctx.params.get("digest"))
    vc.check_lock(vm, skiplock)
    try:
        update_worker_checks(ctx, vm, vmid, changes, deletes)
    except ApiFailure as exc:
        if not worker:
            raise
        return exc.message
    changes = normalise_options(changes)  # qemu-server $update_vm_api: parse_net/print_net
    changes, _volumes = materialize(ctx, vmid, changes)
    if vm["status"] != "running":
        for key in set(changes) | set(deletes):  # a replaced cloud-init drive is removed
            old = vm["config"].get(key, "").split(",")[0]
            if old.endswith("cloudinit") and changes.get(key, "").split(",")[0] != old:
                st.free_volume(ctx.world, old)
        unuse_disks(vm, vmid, deletes, changes)
    vc.write(vm, changes, deletes)
    invariants(ctx)
    return None


def config_put(ctx: Ctx) -> Any:
    """PUT .../config: synchronous; every refusal is the answer (403 or 500)."""
    _config_write(ctx, worker=False)
    return None


def config_post(ctx: Ctx) -> Any:
    """POST .../config: the same change in a qmconfig task. Refusals before the fork are
    the answer; those of $updatefn (drive, PCI device, old bridge, tags) fail the task,
    so the answer is 200 with a UPID and nothing is written."""
    error = _config_write(ctx, worker=True)
    return ctx.task("qmconfig", str(ctx.params["vmid"]), {}, error=error)


_Q = "/nodes/{node}/qemu/{vmid}"
ROUTES: list[Route] = [
    ("GET", "/nodes/{node}/qemu", vm_list),
    ("POST", "/nodes/{node}/qemu", create),
    ("DELETE", _Q, destroy),
    ("POST", f"{_Q}/clone", clone),
    ("POST", f"{_Q}/template", template),
    ("GET", f"{_Q}/config", config_get),
    ("PUT", f"{_Q}/config", config_put),
    ("POST", f"{_Q}/config", config_post),
    ("GET", f"{_Q}/pending", pending),
]
