"""Read what Proxmox has for a VM and plan the changes the inventory asks for."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provision.delivery.generation import (
    generation_of,
    meta_data,
    provisioned_digest,
    user_data_digest,
    with_generation,
)
from provision.delivery.iso import iso_prefix
from provision.delivery.plan import DeliveryPlan, plan_delivery
from provision.errors import ConflictError, InputError
from provision.plan.compare import config_changes
from provision.plan.desired import DesiredVm, desired_vm, without_gpus
from provision.plan.model import Action, Change, Plan
from provision.pve.pci import GpuRef
from provision.vmops.locate import locate_vm, managed_on_node, require_not_out_of_reach
from provision.vmops.session import Session

if TYPE_CHECKING:
    from provision.pve.cluster import VmInfo

BOOT_DISKS = ("scsi0", "virtio0", "sata0", "ide0")
# Keys a running VM only picks up at its next start.
COLD_KEYS = re.compile(r"^(hostpci\d+|machine|bios|cpu|memory|cores|efidisk0|cicustom|ide2|"
                       r"ipconfig\d+|ciuser|sshkeys|nameserver)$")


@dataclass
class VmState:
    """Everything read for one VM, and the plan made from it."""

    desired: DesiredVm
    info: VmInfo | None
    config: dict[str, Any]
    digest: str | None
    template: VmInfo | None
    changes: list[Change]
    delivery: DeliveryPlan
    resize_to: str | None
    boot_disk: str
    plan: Plan
    generation: int = 1
    reprovision: bool = False
    user_data_pending: bool = False  # edited since the guest's last (re-)provision
    gpu_attach: list[str] = field(default_factory=list)
    contested: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    cards: dict[str, Any] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)  # shared GPUs another VM gets
    blocked: list[str] = field(default_factory=list)  # plan_only: what vm up would refuse

    @property
    def vmid(self) -> int | None:
        """The VM's id once known."""
        return self.info.vmid if self.info else self.desired.vmid

    @property
    def running(self) -> bool:
        """True when the VM exists and runs."""
        return self.info is not None and self.info.status == "running"


def read_state(session: Session, vm_name: str, *, take_gpu: bool = False,
               reprovision: bool = False, defer_gpus: frozenset[str] = frozenset(),
               plan_only: bool = False) -> VmState:
    """Read the actual VM (one config GET when it exists) and plan desired vs actual.

    When the plan attaches a GPU, its holders are checked before anything is written:
    held by another VM is a ConflictError (exit 4), unless take_gpu, which plans a swap.
    GPUs in defer_gpus (a shared GPU another VM of the same `vm up --all` gets) are left
    out: the VM is made without them and left stopped, and the plan says how to move them.
    With plan_only (`vm plan`), a GPU held by another VM is a note in the plan, not an error.
    """
    inv = session.inv
    desired = desired_vm(inv, vm_name)
    deferred = [g for g in desired.gpu_names if g in defer_gpus]
    if deferred:
        desired = without_gpus(desired, inv, deferred)
    client = session.client(desired.host_name)
    info = _locate(session, desired)
    template = None
    if info is not None:
        config = _existing_config(client, info, desired)
    else:
        template = _find_source(session, desired)
        config = (dict(client.get(f"/nodes/{template.node}/qemu/{template.vmid}/config"))
                  if template else {})
    digest = config.pop("digest", None) if info is not None else None
    recorded = generation_of(config.get("description")) if info is not None else None
    generation = (recorded or 1) + (1 if reprovision and info is not None else 0)
    files = _cloud_files(inv, vm_name, generation)
    # the user-data the guest was provisioned with stays recorded until a re-provision
    current = user_data_digest(files["user-data"])
    kept = provisioned_digest(config.get("description")) if recorded == generation else None
    pending = kept is not None and kept != current
    attached = str(config.get("ide2", ""))
    hold = attached if pending and f":iso/{iso_prefix(vm_name)}" in attached else None
    delivery = plan_delivery(inv, vm_name, desired.host_name, client, files, hold_iso=hold)
    wanted = {k: v for k, v in desired.config.items() if k not in delivery.drop_keys}
    wanted.update(delivery.config)
    wanted["description"] = with_generation(config.get("description"), generation,
                                            kept or current)
    changes = config_changes(wanted, config, gpus=[GpuRef.of(g) for g in inv.gpus.values()])
    if recorded == generation and kept is not None:
        changes = [c for c in changes if c.key != "description"]
    desired = _with_start_timeout(desired, config, changes)
    boot_disk = next((d for d in BOOT_DISKS if d in config), "scsi0")
    plan = Plan(vm_name, desired.node, info.vmid if info else desired.vmid, info is not None)
    state = VmState(desired, info, config, digest, template, changes, delivery,
                    _resize(config.get(boot_disk), desired.disk_gb), boot_disk, plan,
                    generation, reprovision and info is not None, user_data_pending=pending)
    state.gpu_attach = _gpus_to_attach(session, desired, changes)
    state.cards = _unmapped(session, state.gpu_attach)
    state.unmapped = list(state.cards)
    if state.gpu_attach:
        state.contested = _contested(session, state, take_gpu, plan_only)
    state.deferred = deferred
    _fill_plan(state)
    return state


def _locate(session: Session, desired: DesiredVm) -> VmInfo | None:
    """The VM behind the inventory entry: from its node's live list when that settles it
    (a converged re-run reads no more), else from the whole cluster."""
    home = session.node_vms(desired.host_name, desired.node)
    found = managed_on_node(home, desired.name, desired.vmid)
    if found is not None:
        return found
    snapshot = session.snapshot(desired.host_name)
    info = locate_vm(snapshot, desired.name, desired.vmid)
    if info is None:
        require_not_out_of_reach(snapshot, desired.name)
    return info


def _with_start_timeout(desired: DesiredVm, config: dict[str, Any],
                        changes: list[Change]) -> DesiredVm:
    """desired with a start timeout never below qemu-server's own default for the config
    the VM starts with (the actual or template config with the planned changes)."""
    from dataclasses import replace

    from provision.pve.vmconfig import config_aware_timeout

    started = {k: v for k, v in config.items() if k != "digest"}
    for change in changes:
        if change.new is None:
            started.pop(change.key, None)
        else:
            started[change.key] = change.new
    floor = config_aware_timeout(started)
    return desired if desired.start_timeout >= floor else replace(desired, start_timeout=floor)


def _existing_config(client: Any, info: VmInfo, desired: DesiredVm) -> dict[str, Any]:
    if info.node != desired.node:
        raise ConflictError(
            f"VM '{desired.name}' runs on node '{info.node}', the inventory says "
            f"'{desired.node}'", hint=f"set host: to the entry for {info.node}, or migrate it",
        )
    config = dict(client.get(f"/nodes/{info.node}/qemu/{info.vmid}/config"))
    lock = config.get("lock") or info.lock
    if lock:
        raise ConflictError(f"VM {info.vmid} is locked ({lock})",
                            hint="wait for the running task to end, then re-run")
    return config


def _cloud_files(inv: Any, vm_name: str, generation: int) -> dict[str, bytes]:
    from provision.cloudinit.render import render_user_data
    from provision.delivery.generation import instance_id
    from provision.delivery.network import network_config

    rendered = render_user_data(inv, vm_name, instance_id=instance_id(vm_name, generation))
    files = {"user-data": rendered.text.encode(),
             "meta-data": meta_data(vm_name, generation).encode()}
    network = network_config(inv.vms[vm_name])
    if network:
        files["network-config"] = network.encode()
    return files


def _find_source(session: Session, desired: DesiredVm) -> VmInfo | None:
    if desired.template is None:
        return None
    snapshot = session.snapshot(desired.host_name)
    templates = [vm for vm in snapshot.by_name(desired.template) if vm.template]
    if not templates:
        known = sorted({vm.name for vm in snapshot.vms if vm.template})
        raise InputError(f"no template named '{desired.template}' in the cluster",
                         hint=f"templates there: {', '.join(known) or 'none'}")
    same_node = [t for t in templates if t.node == desired.node]
    return (same_node or templates)[0]


def _resize(disk: str | None, want_gb: int) -> str | None:
    """The size to grow the boot disk to, or None when it is big enough (never shrinks)."""
    if disk is None:
        return None
    match = re.search(r"size=(\d+(?:\.\d+)?)([KMGT]?)", disk)
    if not match:
        return f"{want_gb}G"
    scale = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0, "": 1 / 1024**3}
    have_gb = float(match.group(1)) * scale[match.group(2)]
    return f"{want_gb}G" if have_gb + 1e-9 < want_gb else None


def _gpus_to_attach(session: Session, desired: DesiredVm, changes: list[Change]) -> list[str]:
    new_values = [c.new for c in changes if c.key.startswith("hostpci") and c.new]
    return [g for g in desired.gpu_names
            if any(GpuRef.of(session.inv.gpus[g]).named_by(v) for v in new_values)]


def _unmapped(session: Session, gpus: list[str]) -> dict[str, Any]:
    """Mapped GPUs whose cluster PCI mapping does not exist yet (aihost creates it),
    with the card found for each in the node's hardware listing."""
    from provision.gpu.context import GpuContext
    from provision.gpu.mapping import find_card, mapping_exists

    missing = {}
    for name in gpus:
        gpu = session.inv.gpus[name]
        if gpu.mapping and not mapping_exists(session.client(gpu.host), gpu.mapping):
            missing[name] = find_card(GpuContext(session, name), None)  # fails before writes
    return missing


def _contested(session: Session, state: VmState, take_gpu: bool,
               plan_only: bool = False) -> list[str]:
    """GPUs another VM holds: an error, or (take_gpu) the ones to swap over. A plan that is
    only shown (plan_only) records the conflict in state.blocked instead of failing."""
    from provision.gpu.claim import check_free

    contested = []
    for gpu in state.gpu_attach:
        if gpu in state.unmapped:
            continue  # no mapping yet, so no VM can name it
        try:
            check_free(session, state.desired.name, state.vmid, [gpu])
        except ConflictError as exc:
            if take_gpu:
                contested.append(gpu)
            elif plan_only:
                state.blocked.append(f"needs GPU {gpu}: {exc}")
            else:
                raise
    return contested


def _fill_plan(state: VmState) -> None:
    plan, desired = state.plan, state.desired
    fresh_import = state.info is None and state.template is None
    if state.info is None:
        if state.template is not None:
            plan.actions.append(Action("clone", f"clone template '{desired.template}' "
                                       f"({state.template.vmid} on {state.template.node}) "
                                       f"as '{desired.name}'"))
        else:
            plan.actions.append(Action("create", f"create '{desired.name}' importing "
                                       f"{desired.image}", tuple(state.changes)))
    for gpu in state.unmapped:
        plan.actions.append(Action("map-gpu", f"create PCI mapping for GPU {gpu} from the "
                                   "node's hardware listing"))
    plan.actions.extend(state.delivery.actions)
    if state.changes and not fresh_import:
        plan.actions.append(Action("configure", "set VM options", tuple(state.changes)))
    for gpu in state.contested:
        plan.actions.append(Action("take-gpu", f"take GPU {gpu} from its holder (swap)"))
    if state.resize_to:
        plan.actions.append(Action("resize", f"grow {state.boot_disk} to {state.resize_to}"))
    if state.user_data_pending:
        plan.notes.append("user-data changed: takes effect on re-provision "
                          f"(`aihost vm up {desired.name} --reprovision`)")
    if state.reprovision:
        plan.notes.append(f"re-provision: generation {state.generation}; the guest redoes its "
                          "first boot at the next start")
    for gpu in state.deferred:
        plan.notes.append(f"GPU {gpu} is shared: another VM gets it; left stopped "
                          f"(`aihost gpu swap {gpu} --to {desired.name}` moves it here)")
    plan.notes.extend(state.blocked)
    if state.deferred or state.blocked:
        return
    if state.running:
        cold = [c.key for c in state.changes if COLD_KEYS.match(c.key)]
        if state.reprovision or (cold and not state.contested):
            plan.actions.append(Action("restart", "restart to apply: "
                                       + ", ".join(cold or ["re-provision"])))
    elif not state.contested:
        plan.actions.append(Action("start", f"start (timeout {desired.start_timeout} s)"))
    if plan.changes_anything:
        plan.actions.append(Action("verify", "verify the guest: agent, nvidia-smi, runtime",
                                   writes=False))
