"""Carry out a VM's plan: create, upload user-data, configure, resize, start, verify."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provision.delivery.iso import remove_volumes, upload_iso
from provision.delivery.snippets import upload_snippets
from provision.errors import AihostError, ApiError
from provision.guest.verify import GuestReport, verify_guest
from provision.plan.desired import hostpci_value
from provision.plan.model import Plan
from provision.vmops.planner import VmState
from provision.vmops.session import Session

CLONE_TIMEOUT = 1800.0
CONFIG_TIMEOUT = 600.0


@dataclass
class UpOptions:
    """How `vm up` behaves."""

    wait: bool = True
    agent_timeout: float = 900.0
    take_gpu: bool = False
    force: bool = False
    reprovision: bool = False
    preflight: bool = True


@dataclass
class UpResult:
    """What `vm up` did for one VM."""

    vm: str
    plan: Plan
    vmid: int | None = None
    applied: list[str] = field(default_factory=list)
    report: GuestReport | None = None
    endpoint: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return {
            "vm": self.vm,
            "vmid": self.vmid,
            "plan": self.plan.to_json(),
            "applied": self.applied,
            "guest": self.report.to_json() if self.report else None,
            "endpoint": self.endpoint,
            "warnings": self.warnings,
        }


def apply_plan(session: Session, state: VmState, options: UpOptions) -> UpResult:
    """Apply state.plan; a fresh VM is removed again if configuring it fails."""
    from provision.gpu.context import GpuContext
    from provision.gpu.mapping import map_gpu
    from provision.pve.tasks import wait_task

    desired, plan = state.desired, state.plan
    client = session.client(desired.host_name)
    say = session.progress
    result = UpResult(vm=desired.name, plan=plan, vmid=state.vmid)
    if not plan.changes_anything:
        return result
    node = desired.node
    created = False
    digest = state.digest
    kinds = {a.kind for a in plan.actions}
    if "clone" in kinds or "create" in kinds:
        vmid = _create(session, state, wait_task)
        created = True
        result.vmid = plan.vmid = vmid
        result.applied.append("clone" if "clone" in kinds else "create")
        digest = client.get(f"/nodes/{node}/qemu/{vmid}/config").get("digest")
    vmid = int(result.vmid or 0)
    base = f"/nodes/{node}/qemu/{vmid}"
    try:
        for gpu in state.unmapped:
            say(f"{desired.name}: creating the PCI mapping of GPU {gpu}")
            map_gpu(GpuContext(session, gpu), card=state.cards[gpu], missing=True)
            result.applied.append("map-gpu")
        if "upload-user-data" in kinds:
            say(f"{desired.name}: uploading cloud-init snippets")
            upload_snippets(session.inv, desired.host_name, state.delivery.snippets)
            result.applied.append("upload-user-data")
        if "upload-iso" in kinds and state.delivery.iso is not None:
            say(f"{desired.name}: uploading {state.delivery.iso.volume}")
            upload_iso(client, node, state.delivery.iso, wait_task)
            result.applied.append("upload-iso")
        if "configure" in kinds:
            say(f"{desired.name}: configuring ({len(state.changes)} option(s))")
            _configure(session, state, vmid, digest)
            result.applied.append("configure")
        if "resize" in kinds:
            say(f"{desired.name}: growing {state.boot_disk} to {state.resize_to}")
            upid = client.put(f"{base}/resize", disk=state.boot_disk, size=state.resize_to)
            if upid:
                wait_task(client, upid, timeout=CONFIG_TIMEOUT, what="resize", progress=say)
            result.applied.append("resize")
    except AihostError:
        if created:
            _remove_fresh(session, state, vmid)
        raise
    if state.contested:
        _take_gpus(session, state, options)
        result.applied.append("take-gpu")
    elif "restart" in kinds:
        say(f"{desired.name}: restarting to apply pending changes")
        upid = client.post(f"{base}/status/reboot", timeout=desired.start_timeout)
        wait_task(client, upid, timeout=desired.start_timeout + 120, what="restart", progress=say)
        result.applied.append("restart")
    elif "start" in kinds:
        say(f"{desired.name}: starting (timeout {desired.start_timeout} s)")
        upid = client.post(f"{base}/status/start", timeout=desired.start_timeout)
        task = wait_task(client, upid, timeout=desired.start_timeout + 60, what="start",
                         progress=say)
        if task.warnings:
            result.warnings.append(f"start ended with {task.exitstatus}")
        result.applied.append("start")
    if state.delivery.iso is not None and state.delivery.iso.stale and "upload-iso" in kinds:
        try:
            remove_volumes(client, node, state.delivery.iso.stale, wait_task)
        except ApiError as exc:
            result.warnings.append(f"old cloud-init ISOs left on the storage: {exc}")
    if options.wait and "verify" in kinds:
        result.report = _verify(session, state, vmid, options)
        result.endpoint = _endpoint(session, state, result.report)
    return result


def _configure(session: Session, state: VmState, vmid: int, digest: str | None) -> None:
    """One config write with digest; GPUs are attached under their lease."""
    from provision.gpu.claim import claim_gpus
    from provision.pve.tasks import wait_task

    desired = state.desired
    client = session.client(desired.host_name)
    contested = {hostpci_value(session.inv.gpus[g]) for g in state.contested}
    changes = [c for c in state.changes if c.new not in contested]
    params: dict[str, Any] = {c.key: c.new for c in changes if c.new is not None}
    deletes = [c.key for c in changes if c.new is None]
    if deletes:
        params["delete"] = ",".join(deletes)
    if digest:
        params["digest"] = digest
    claimed = [g for g in state.gpu_attach if g not in state.contested]
    with claim_gpus(session, desired.name, vmid, claimed):
        upid = client.post(f"/nodes/{desired.node}/qemu/{vmid}/config", **params)
        if upid:
            wait_task(client, upid, timeout=CONFIG_TIMEOUT, what="configure",
                      progress=session.progress)


def _take_gpus(session: Session, state: VmState, options: UpOptions) -> None:
    """--take-gpu: swap each contested GPU over; the swap starts this VM."""
    from provision.gpu.context import GpuContext
    from provision.gpu.swap import SwapOptions, swap_gpu

    session.snapshot(state.desired.host_name, refresh=True)  # the VM may be new
    for gpu in state.contested:
        ctx = GpuContext(session, gpu)
        swap_gpu(ctx, state.desired.name, SwapOptions(force=options.force, verify=False))


def _create(session: Session, state: VmState, wait_task: Any) -> int:
    """Clone the template (or create with an imported disk); return the new vmid."""
    from provision.pve.cluster import next_vmid

    desired = state.desired
    client = session.client(desired.host_name)
    say = session.progress
    # nextid and the create request are serialised: a fleet must not race for one id.
    with session.create_lock:
        vmid = desired.vmid or next_vmid(client)
        if state.template is not None:
            say(f"{desired.name}: cloning template {state.template.vmid} as {vmid}")
            params: dict[str, Any] = {"newid": vmid, "name": desired.name, "full": 1,
                                      "storage": desired.disk_storage}
            if state.template.node != desired.node:
                params["target"] = desired.node
            upid = client.post(
                f"/nodes/{state.template.node}/qemu/{state.template.vmid}/clone", **params
            )
        else:
            say(f"{desired.name}: creating {vmid} from {desired.image}")
            params = dict(desired.config)
            params.update(vmid=vmid, scsihw="virtio-scsi-single", boot="order=scsi0",
                          scsi0=f"{desired.disk_storage}:0,import-from={desired.image}")
            upid = client.post(f"/nodes/{desired.node}/qemu", **params)
    wait_task(client, upid, timeout=CLONE_TIMEOUT, what="create", progress=say)
    return int(vmid)


def _remove_fresh(session: Session, state: VmState, vmid: int) -> None:
    """Undo a VM this run created, so a failed run leaves nothing half-written."""
    from provision.pve.tasks import wait_task

    client = session.client(state.desired.host_name)
    try:
        upid = client.delete(f"/nodes/{state.desired.node}/qemu/{vmid}", purge=1)
        wait_task(client, upid, timeout=CONFIG_TIMEOUT, what="remove the half-made VM")
        session.progress(f"{state.desired.name}: removed the new VM {vmid} again")
    except ApiError as exc:
        session.progress(f"{state.desired.name}: could not remove VM {vmid}: {exc}")


def _verify(session: Session, state: VmState, vmid: int, options: UpOptions) -> GuestReport:
    from provision.delivery.generation import instance_id
    from provision.guest.agent import GuestAgent

    desired = state.desired
    vm = session.inv.vms[desired.name]
    agent = GuestAgent(session.client(desired.host_name), desired.node, vmid)
    # an edited user-data the guest has not run yet cannot have pulled the new models
    models = [] if state.user_data_pending else vm.models
    return verify_guest(
        agent, expect_gpu=bool(desired.gpu_names), runtime=vm.runtime, models=models,
        agent_timeout=options.agent_timeout,
        progress=lambda msg: session.progress(f"{desired.name}: {msg}"),
        instance_id=instance_id(desired.name, state.generation),
    )


def _endpoint(session: Session, state: VmState, report: GuestReport) -> str | None:
    """The URL a user reaches the LLM at (or how to tunnel to it when bound to loopback)."""
    vm = session.inv.vms[state.desired.name]
    if vm.runtime == "none":
        return None
    address = report.addresses[0] if report.addresses else None
    port = vm.runtime_port
    if vm.listen in ("127.0.0.1", "::1"):
        target = address or "<vm-address>"
        return (f"http://127.0.0.1:{port} inside the VM; from your machine: "
                f"ssh -L {port}:127.0.0.1:{port} {vm.user.name}@{target}")
    return f"http://{address or vm.listen}:{port}"
