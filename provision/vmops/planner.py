"""Read what Proxmox has for a VM and plan the changes the inventory asks for."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provision.errors import ConflictError, InputError
from provision.plan.compare import config_changes
from provision.plan.desired import DesiredVm, desired_vm, hostpci_value
from provision.plan.model import Action, Change, Plan
from provision.vmops.locate import locate_vm
from provision.vmops.session import Session
from provision.delivery.snippets import SnippetFile, instance_id, plan_snippets

if TYPE_CHECKING:
    from provision.pve.cluster import VmInfo

BOOT_DISKS = ("scsi0", "virtio0", "sata0", "ide0")
# Keys a running VM only picks up at its next start.
COLD_KEYS = re.compile(r"^(hostpci\d+|machine|bios|cpu|memory|cores|efidisk0|cicustom|"
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
    snippets: list[SnippetFile]
    resize_to: str | None
    boot_disk: str
    plan: Plan
    user_data_secrets: list[str] = field(default_factory=list)
    gpu_attach: list[str] = field(default_factory=list)
    contested: list[str] = field(default_factory=list)

    @property
    def vmid(self) -> int | None:
        """The VM's id once known."""
        return self.info.vmid if self.info else self.desired.vmid


def read_state(session: Session, vm_name: str, *, take_gpu: bool = False) -> VmState:
    """Read the actual VM (one config GET when it exists) and plan desired vs actual.

    When the plan attaches a GPU, its holders are checked before anything is written:
    held by another VM is a ConflictError (exit 4), unless take_gpu, which plans a swap.
    """
    inv = session.inv
    desired = desired_vm(inv, vm_name)
    client = session.client(desired.host_name)
    snapshot = session.snapshot(desired.host_name)
    info = locate_vm(snapshot, vm_name, desired.vmid)
    template = None
    if info is not None:
        if info.node != desired.node:
            raise ConflictError(
                f"VM '{vm_name}' runs on node '{info.node}', the inventory says '{desired.node}'",
                hint=f"set host: to the entry for {info.node}, or migrate the VM back",
            )
        config = dict(client.get(f"/nodes/{info.node}/qemu/{info.vmid}/config"))
        lock = config.get("lock") or info.lock
        if lock:
            raise ConflictError(f"VM {info.vmid} is locked ({lock})",
                                hint="wait for the running task to end, then re-run")
    else:
        template = _find_source(session, desired)
        config = (dict(client.get(f"/nodes/{template.node}/qemu/{template.vmid}/config"))
                  if template else {})
    digest = config.pop("digest", None) if info is not None else None
    gpu_values = {hostpci_value(g) for g in inv.gpus.values()}
    from provision.pve.vmconfig import normalize_hostpci

    changes = config_changes(desired.config, config,
                             gpu_hostpci={normalize_hostpci(v) for v in gpu_values})
    boot_disk = next((d for d in BOOT_DISKS if d in config), "scsi0")
    resize_to = _resize(config.get(boot_disk), desired.disk_gb)
    rendered, meta = _render(inv, vm_name)
    snippets = plan_snippets(inv, vm_name, desired.host_name, client,
                             rendered.text.encode(), meta.encode())
    state = VmState(desired, info, config, digest, template, changes, snippets, resize_to,
                    boot_disk, Plan(vm_name, desired.node, info.vmid if info else desired.vmid,
                                    info is not None), rendered.secrets)
    state.gpu_attach = _gpus_to_attach(session, desired, changes)
    if state.gpu_attach:
        state.contested = _contested(session, state, take_gpu)
    _fill_plan(state)
    return state


def _gpus_to_attach(session: Session, desired: DesiredVm, changes: list[Change]) -> list[str]:
    new_values = {c.new for c in changes if c.key.startswith("hostpci") and c.new}
    return [g for g in desired.gpu_names if hostpci_value(session.inv.gpus[g]) in new_values]


def _contested(session: Session, state: VmState, take_gpu: bool) -> list[str]:
    """GPUs another VM holds: an error, or (take_gpu) the ones to swap over."""
    from provision.gpu.claim import check_free

    contested = []
    for gpu in state.gpu_attach:
        try:
            check_free(session, state.desired.name, state.vmid, [gpu])
        except ConflictError:
            if not take_gpu:
                raise
            contested.append(gpu)
    return contested


def _find_source(session: Session, desired: DesiredVm) -> VmInfo | None:
    if desired.template is None:
        return None
    snapshot = session.snapshot(desired.host_name)
    templates = [vm for vm in snapshot.by_name(desired.template) if vm.template]
    if not templates:
        known = sorted({vm.name for vm in snapshot.vms if vm.template})
        raise InputError(
            f"no template named '{desired.template}' in the cluster",
            hint=f"templates there: {', '.join(known) or 'none'}",
        )
    same_node = [t for t in templates if t.node == desired.node]
    return (same_node or templates)[0]


def _render(inv: Any, vm_name: str) -> tuple[Any, str]:
    from provision.cloudinit.render import render_meta_data, render_user_data

    pinned = instance_id(vm_name, 1)
    return render_user_data(inv, vm_name, instance_id=pinned), render_meta_data(vm_name, pinned)


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


def _fill_plan(state: VmState) -> None:
    plan, desired = state.plan, state.desired
    if state.info is None:
        if state.template is not None:
            plan.actions.append(Action("clone", f"clone template '{desired.template}' "
                                       f"({state.template.vmid} on {state.template.node}) "
                                       f"as '{desired.name}'"))
        else:
            plan.actions.append(Action("create", f"create '{desired.name}' importing "
                                       f"{desired.image}"))
    for snippet in state.snippets:
        if not snippet.present:
            plan.actions.append(Action("upload-user-data", f"upload {snippet.volume} "
                                       f"(sha256 {snippet.sha256[:12]})"))
    config_changes_ = [c for c in state.changes
                       if not (state.info is None and state.template is None)]
    if config_changes_:
        plan.actions.append(Action("configure", "set VM options", tuple(config_changes_)))
    for gpu in state.contested:
        plan.actions.append(Action("take-gpu", f"take GPU {gpu} from its holder (swap)"))
    if state.resize_to:
        plan.actions.append(Action("resize", f"grow {state.boot_disk} to {state.resize_to}"))
    running = state.info is not None and state.info.status == "running"
    if running:
        cold = [c.key for c in state.changes if COLD_KEYS.match(c.key)]
        if cold or any(not s.present for s in state.snippets):
            plan.notes.append(
                "the VM is running: changes to " + ", ".join(cold or ["user-data"])
                + " take effect at its next start (`aihost vm down` then `vm up`)"
            )
    else:
        plan.actions.append(Action("start", f"start (timeout {desired.start_timeout} s)"))
    if plan.changes_anything:
        plan.actions.append(Action("verify", "verify the guest: agent, nvidia-smi, runtime",
                                   writes=False))
