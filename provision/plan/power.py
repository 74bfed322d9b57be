"""Whether a planned VM is started or restarted, and why.

A running VM picks up some changes only at its next start: the cold keys aihost changes,
and whatever Proxmox holds in [PENDING] (qemu-server QemuServer.pm
`vmconfig_hotplug_pending` leaves there what it cannot apply live). GET .../config shows
pending values as if applied, so the planner reads GET .../pending, which also lists
which keys wait (provision.pve.vm.Vm.config_with_pending).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from provision.plan.model import Action

if TYPE_CHECKING:
    from provision.plan.vmplan import VmState

# Keys a running VM only picks up at its next start (`agent`: qemu-server
# `vmconfig_update_agent` leaves any change but fstrim_cloned_disks pending).
COLD_KEYS = re.compile(
    r"^(hostpci\d+|virtiofs\d|machine|bios|cpu|memory|cores|efidisk0|cicustom|ide2|"
    r"ipconfig\d+|ciuser|sshkeys|nameserver|agent)$"
)


def power_actions(state: VmState) -> list[Action]:
    """Restart a running VM whose cold keys change, that has managed changes waiting in
    [PENDING] (an earlier restart failed or never came) or that is re-provisioned; start
    a stopped one; a swap (take-gpu) starts the VM itself."""
    if state.contested:
        return []
    timeout = state.desired.start_timeout
    if state.running:
        cold = [c.key for c in state.changes if COLD_KEYS.match(c.key)]
        pending = [k for k in restart_pending(state) if k not in cold]
        summary = _restart_summary(cold, pending, state.reprovision, state.stale_guest)
        return [Action("restart", summary, timeout=timeout)] if summary else []
    return [Action("start", f"start (timeout {timeout} s)", timeout=timeout)]


def _restart_summary(
    cold: list[str], pending: list[str], reprovision: bool, stale: str | None
) -> str | None:
    """Why a running VM restarts ("restart to apply: cores; pending: memory"), or None;
    stale: the older instance the guest still runs (an earlier re-provision's restart
    failed), which a restart brings to the current one."""
    if pending and not cold:
        return "restart to apply pending: " + ", ".join(pending)
    if cold:
        return "restart to apply: " + "; ".join(
            [", ".join(cold)] + (["pending: " + ", ".join(pending)] if pending else [])
        )
    if stale:
        return f"restart to apply: re-provision (the guest still runs {stale})"
    return "restart to apply: re-provision" if reprovision else None


def restart_pending(state: VmState) -> list[str]:
    """The keys in [PENDING] a running VM is restarted for: those aihost manages (its
    config, delivery and dropped keys) and the cold ones (GPUs, virtiofs, machine...).

    Proxmox leaves in [PENDING] what it could not apply to the running VM
    (qemu-server QemuServer.pm `vmconfig_hotplug_pending`), and GET .../config shows it
    applied: without this a re-run after a failed restart sees nothing to change while
    the VM still runs its old hardware. A pending key aihost does not manage is a note.
    """
    managed = {*state.desired.config, *state.delivery.config, *state.desired.drop}
    return [k for k in state.pending if COLD_KEYS.match(k) or k in managed]


def pending_notes(state: VmState) -> list[str]:
    """A note naming the pending keys of a running VM that aihost does not restart it for."""
    foreign = [k for k in state.pending if k not in restart_pending(state)]
    if not (foreign and state.running):
        return []
    return [
        f"pending in Proxmox, not managed by aihost: {', '.join(foreign)} "
        "(applies at the VM's next restart)"
    ]
