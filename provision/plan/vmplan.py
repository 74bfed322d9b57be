"""The pure planner: desired (inventory) and actual (as read from Proxmox) -> ordered actions.

No I/O here: provision.vmops.planner reads the actual state once and calls plan_vm. The
actions come out in the order the executor (provision.vmops.apply) carries them out and
the pre-flight checks them, each with the parameters it needs (which GPU, which disk and
size, which timeout).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from provision.delivery.plan import DeliveryPlan
from provision.errors import ConflictError
from provision.plan.compare import config_changes
from provision.plan.desired import DesiredVm
from provision.plan.model import Action, Change, Plan
from provision.plan.power import pending_notes, power_actions
from provision.pve.cluster import VmInfo
from provision.pve.hardware import PciDevice
from provision.pve.pci import GpuRef
from provision.pve.vm import start_timeout

BOOT_DISKS = ("scsi0", "virtio0", "sata0", "ide0")


@dataclass(frozen=True)
class GpuFacts:
    """What was read about a GPU the VM is to get: its mapping's card when the mapping
    must be created first, and the refusal when another VM holds it."""

    card: PciDevice | None = None  # the card, when its mapping must be created
    held: ConflictError | None = None


@dataclass(frozen=True)
class Actual:
    """What Proxmox has for one VM, read once (provision.vmops.planner.read_actual)."""

    info: VmInfo | None  # the VM, None when it is to be made
    template: VmInfo | None  # the template to clone when it is to be made
    config: dict[str, Any]  # the VM's (or template's) config, without digest
    digest: str | None
    delivery: DeliveryPlan
    description: str  # the description to want (generation and provisioned digest)
    keep_description: bool = False  # the recorded description is current
    generation: int = 1
    reprovision: bool = False
    user_data_pending: bool = False
    gpus: dict[str, GpuFacts] = field(default_factory=dict)  # GPUs to attach, by name
    pending: tuple[str, ...] = ()  # keys in Proxmox's [PENDING]: applied at the next start
    stale_guest: str | None = None  # the older instance the running guest still runs


@dataclass(frozen=True)
class PlanOptions:
    """How the plan treats a GPU another VM holds."""

    take_gpu: bool = False  # plan a swap (`vm up --take-gpu`)
    plan_only: bool = False  # a note, not an error (`vm plan`)
    deferred: tuple[str, ...] = ()  # shared GPUs another VM of the batch gets


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
    cards: dict[str, PciDevice] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)  # shared GPUs another VM gets
    blocked: list[str] = field(default_factory=list)  # plan_only: what vm up would refuse
    started_config: dict[str, Any] = field(default_factory=dict)  # config after the changes
    pending: tuple[str, ...] = ()  # keys in Proxmox's [PENDING] (config shows them applied)
    stale_guest: str | None = None  # the older instance the running guest still runs

    @property
    def vmid(self) -> int | None:
        """The VM's id once known."""
        return self.info.vmid if self.info else self.desired.vmid

    @property
    def running(self) -> bool:
        """True when the VM exists and runs."""
        return self.info is not None and self.info.status == "running"


def wanted_config(desired: DesiredVm, actual: Actual) -> dict[str, str]:
    """The config to converge to: the inventory's, with the delivery's keys and the
    description recording the provisioning generation."""
    wanted = {k: v for k, v in desired.config.items() if k not in actual.delivery.drop_keys}
    wanted.update(actual.delivery.config)
    wanted["description"] = actual.description
    return wanted


def changes_for(desired: DesiredVm, actual: Actual, gpus: dict[str, GpuRef]) -> list[Change]:
    """Config changes desired needs; gpus are every inventory GPU (a VM's hostpci naming
    one it should not have is removed)."""
    changes = config_changes(
        wanted_config(desired, actual), actual.config, gpus=list(gpus.values()), drop=desired.drop
    )
    if actual.keep_description:
        changes = [c for c in changes if c.key != "description"]
    return changes


def gpus_to_attach(desired: DesiredVm, gpus: dict[str, GpuRef], changes: list[Change]) -> list[str]:
    """The VM's GPUs that a change writes (not yet attached as wanted)."""
    new_values = [c.new for c in changes if c.key.startswith("hostpci") and c.new]
    return [g for g in desired.gpu_names if any(gpus[g].named_by(v) for v in new_values)]


def config_after(config: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    """The config the VM starts with: the actual (or template) one with changes made."""
    started = {k: v for k, v in config.items() if k != "digest"}
    for change in changes:
        if change.new is None:
            started.pop(change.key, None)
        else:
            started[change.key] = change.new
    return started


def resize_to(disk: str | None, want_gb: int) -> str | None:
    """The size to grow the boot disk to, or None when it is big enough (never shrinks)."""
    if disk is None:
        return None
    match = re.search(r"size=(\d+(?:\.\d+)?)([KMGT]?)", disk)
    if not match:
        return f"{want_gb}G"
    scale = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0, "": 1 / 1024**3}
    have_gb = float(match.group(1)) * scale[match.group(2)]
    return f"{want_gb}G" if have_gb + 1e-9 < want_gb else None


def plan_vm(
    desired: DesiredVm,
    actual: Actual,
    gpus: dict[str, GpuRef],
    options: PlanOptions = PlanOptions(),
) -> VmState:
    """Plan desired against actual. A GPU another VM holds is a ConflictError (exit 4),
    unless options.take_gpu (a swap is planned) or options.plan_only (a note)."""
    changes = changes_for(desired, actual, gpus)
    started = config_after(actual.config, changes)
    desired = replace(desired, start_timeout=start_timeout(desired.start_timeout, started))
    boot_disk = next((d for d in BOOT_DISKS if d in actual.config), "scsi0")
    info = actual.info
    state = VmState(
        desired,
        info,
        actual.config,
        actual.digest,
        actual.template,
        changes,
        actual.delivery,
        resize_to(actual.config.get(boot_disk), desired.disk_gb),
        boot_disk,
        Plan(desired.name, desired.node, info.vmid if info else desired.vmid, info is not None),
        actual.generation,
        actual.reprovision,
        actual.user_data_pending,
        started_config=started,
        deferred=list(options.deferred),
        pending=actual.pending,
        stale_guest=actual.stale_guest,
    )
    state.gpu_attach = gpus_to_attach(desired, gpus, changes)
    facts = {g: actual.gpus.get(g, GpuFacts()) for g in state.gpu_attach}
    state.cards = {g: f.card for g, f in facts.items() if f.card is not None}
    state.unmapped = list(state.cards)
    for gpu, fact in facts.items():
        if fact.held is None or gpu in state.unmapped:
            continue
        if options.take_gpu:
            state.contested.append(gpu)
        elif options.plan_only:
            state.blocked.append(f"needs GPU {gpu}: {fact.held}")
        else:
            raise fact.held
    state.plan.actions.extend(plan_actions(state))
    state.plan.notes.extend(plan_notes(state))
    return state


def plan_actions(state: VmState) -> list[Action]:
    """The ordered actions: make, map, deliver, configure, resize, take, start, verify."""
    desired = state.desired
    fresh_import = state.info is None and state.template is None
    actions: list[Action] = []
    if state.info is None and state.template is not None:
        actions.append(
            Action(
                "clone",
                f"clone template '{desired.template}' "
                f"({state.template.vmid} on {state.template.node}) as "
                f"'{desired.name}'",
            )
        )
    elif state.info is None:
        actions.append(
            Action(
                "create",
                f"create '{desired.name}' importing {desired.image}",
                tuple(state.changes),
                gpus=tuple(state.gpu_attach),
            )
        )
    actions += [
        Action(
            "map-gpu", f"create PCI mapping for GPU {gpu} from the node's hardware listing", gpu=gpu
        )
        for gpu in state.unmapped
    ]
    actions.extend(state.delivery.actions)
    if state.changes and not fresh_import:
        actions.append(
            Action(
                "configure", "set VM options", tuple(state.changes), gpus=tuple(state.gpu_attach)
            )
        )
    if state.resize_to:
        actions.append(
            Action(
                "resize",
                f"grow {state.boot_disk} to {state.resize_to}",
                disk=state.boot_disk,
                size=state.resize_to,
            )
        )
    actions += [
        Action("take-gpu", f"take GPU {gpu} from its holder (swap)", gpu=gpu)
        for gpu in state.contested
    ]
    if state.deferred or state.blocked:
        return actions  # left stopped: nothing to start or verify
    actions += power_actions(state)
    if any(a.writes for a in actions):
        actions.append(
            Action("verify", "verify the guest: agent, nvidia-smi, runtime", writes=False)
        )
    return actions


def plan_notes(state: VmState) -> list[str]:
    """What the plan leaves for later, and why."""
    name = state.desired.name
    notes = []
    if state.user_data_pending:
        notes.append(
            f"user-data changed: takes effect on re-provision (`aihost vm up {name} --reprovision`)"
        )
    if state.reprovision:
        notes.append(
            f"re-provision: generation {state.generation}; the guest redoes its "
            "first boot at the next start"
        )
    notes += pending_notes(state)
    notes += [
        f"GPU {gpu} is shared: another VM gets it; left stopped "
        f"(`aihost gpu swap {gpu} --to {name}` moves it here)"
        for gpu in state.deferred
    ]
    return notes + state.blocked
