"""Restarting a running VM through Proxmox's reboot, which only shuts it down.

qemu-server's `vm_reboot` writes a reboot request and shuts the VM down; its qmreboot
task ends there. `qm cleanup` (run by qmeventd when QEMU exits) finds the request and
starts the VM with a qmstart task of its own, as root@pam. So a finished reboot task is
not a started VM: the restart can still fail (a PCI device in use, a missing snippet)
while the reboot task says OK. After the reboot, aihost waits for the VM's live status
to be `running` again and, while it is not, looks for that qmstart in the node's task
list (visible to a token with Sys.Audit on the node) to report its error at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision.errors import ApiError, TaskFailed, WaitTimeout
from provision.pve.tasks import TASK_MARGIN, parse_upid, task_log_tail

if TYPE_CHECKING:
    from provision.pve.vm import Vm

SHUTDOWN_TIMEOUT = 120  # seconds the guest gets to power off (Proxmox's default is 60)
MAX_DELAY = 1.0


def reboot(vm: Vm, *, start_timeout: float) -> None:
    """Reboot vm and return once it runs again; TaskFailed when the restart failed,
    WaitTimeout when it does not run within start_timeout + 60 s of the shutdown."""
    upid = vm.api.post(f"{vm.path}/status/reboot", timeout=SHUTDOWN_TIMEOUT)
    vm.wait(upid, timeout=SHUTDOWN_TIMEOUT + TASK_MARGIN, what="reboot (shutdown)")
    wait_restarted(vm, since=parse_upid(upid).starttime, timeout=start_timeout + TASK_MARGIN)


def wait_restarted(vm: Vm, *, since: int, timeout: float) -> None:
    """Poll the VM's live status until it runs (bounded by timeout); a failed qmstart of
    the VM started since `since` (node time) ends the wait with its error."""
    start = vm.clock()
    delay = 0.05
    announced = False
    vmid, node = vm.vmid, vm.node
    while True:
        status = vm.status()
        if status.get("status") == "running":
            return
        failed = failed_restart(vm, since)
        if failed is not None:
            raise failed
        waited = vm.clock() - start
        if waited >= timeout:
            raise WaitTimeout(
                f"VM {vmid} did not run again within {timeout:.0f} s of its reboot (Proxmox's "
                f"reboot only shuts down; `qm cleanup` starts it again); it is "
                f"{status.get('status', 'unknown')}",
                hint=f"look for a qmstart task of VM {vmid} in the task log of node {node}, "
                "then re-run `aihost vm up`",
            )
        if not announced:
            vm.progress(f"waiting for VM {vmid} to run again (the restart after its reboot)")
            announced = True
        vm.sleep(min(delay, max(0.0, timeout - waited)))
        delay = min(delay * 2, MAX_DELAY)


def failed_restart(vm: Vm, since: int) -> TaskFailed | None:
    """The error of a qmstart of the VM since `since` that failed, or None (none failed, or
    the task list does not show it: without Sys.Audit a token sees only its own tasks)."""
    vmid = vm.vmid
    try:
        tasks = (
            vm.api.get(
                f"/nodes/{vm.node}/tasks",
                vmid=vmid,
                typefilter="qmstart",
                source="all",
                since=since,
            )
            or []
        )
    except ApiError:
        return None
    for task in tasks:
        status = str(task.get("status", ""))
        if status in ("", "RUNNING", "OK") or status.startswith("WARNINGS"):
            continue
        upid = str(task.get("upid", ""))
        tail = task_log_tail(vm.api, vm.node, upid) if upid else []
        failure = TaskFailed(
            f"VM {vmid} did not start again after its reboot: Proxmox task qmstart (started by "
            f"{task.get('user', 'qm cleanup')}) ended with: {status}",
            upid=upid,
            exitstatus=status,
            log_tail=tail,
        )
        failure.hint = "the reboot itself ended OK; fix the cause, then re-run `aihost vm up`"
        return failure
    return None
