"""Carry out a VM's plan: create, upload user-data, configure, resize, start, verify."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from provision.delivery.generation import instance_id
from provision.delivery.iso import remove_volumes, upload_iso
from provision.delivery.snippets import upload_snippets
from provision.errors import AihostError, ApiError
from provision.gpu.context import GpuContext
from provision.gpu.mapping import map_gpu, mapping_exists
from provision.gpu.record import ATTACHING, STARTING
from provision.gpu.swap import SwapOptions, swap_gpu
from provision.guest.verify import GuestReport, verify_vm
from provision.plan.model import Action
from provision.pve.node import Node
from provision.pve.pci import GpuRef, names_any
from provision.pve.session import Background, Session
from provision.pve.vm import Vm
from provision.vmops.access import static_ip_warnings, vm_access
from provision.vmops.leases import HeldLeases
from provision.vmops.make import make_vm, remove_fresh
from provision.vmops.outcome import UpOptions, UpResult
from provision.vmops.planner import VmState
from provision.vmops.store import ensure_store


class _Run:
    """One apply: the VM's handles, the digest to write with, what was done, and the GPU
    leases held from the attach (or the start) until the VM's start has ended."""

    def __init__(self, session: Session, state: VmState, options: UpOptions) -> None:
        self.session, self.state, self.options = session, state, options
        desired = state.desired
        self.say = session.progress
        self.node = Node(session.client(desired.host_name), desired.node, self.say)
        self.result = UpResult(vm=desired.name, plan=state.plan, vmid=state.vmid)
        self.digest = state.digest
        self.created = False
        self.swapped = False
        self.leases = HeldLeases(session, desired.name)
        self.upload: Background | None = None  # the user-data upload under way

    @property
    def vm(self) -> Vm:
        """The VM's handle (once it exists)."""
        return self.node.vm(int(self.result.vmid or 0))

    def done(self, kind: str) -> None:
        """Record an applied step."""
        self.result.applied.append(kind)


def apply_plan(session: Session, state: VmState, options: UpOptions) -> UpResult:
    """Carry out state.plan's actions in their order; a fresh VM is removed again if a
    step before its start fails."""
    run = _Run(session, state, options)
    plan = state.plan
    if not plan.changes_anything:
        if options.wait and state.vmid is not None and not state.deferred:
            run.result.access = vm_access(session, state, state.vmid, None)
        return run.result
    with run.leases:
        for action in plan.actions:
            if action.kind not in _WHILE_UPLOADING:
                _step(run, "upload-user-data", partial(_upload_ended, run))
            _step(run, action.kind, partial(_STEPS[action.kind], run, action))
        _step(run, "upload-user-data", partial(_upload_ended, run))
    _remove_stale_isos(run)
    if options.wait and not state.deferred:
        report, vm = run.result.report, session.inv.vms[state.desired.name]
        run.result.access = vm_access(session, state, run.vm.vmid, report)
        run.result.warnings += static_ip_warnings(vm, report.addresses if report else None)
    return run.result


def _step(run: _Run, kind: str, work: Callable[[], None]) -> None:
    """Do one step of kind; when it fails, nothing of the run is left writing, its leases
    are given back and a fresh VM is removed again (unless the failure is its start's)."""
    try:
        work()
    except AihostError as exc:
        if run.upload is not None:
            run.upload.join()
            run.upload = None
        run.leases.release(exc)  # before a removal: the lease must not name a gone VM
        if run.created and kind in _BEFORE_START:
            remove_fresh(run.session, run.state, run.vm.vmid)
        raise


def _upload_ended(run: _Run) -> None:
    """Wait for the user-data upload begun by its step (its error is raised here)."""
    upload, run.upload = run.upload, None
    if upload is not None:
        upload.result()


def _make(run: _Run, action: Action) -> None:
    vmid = make_vm(run.session, run.state, run.node)
    run.created = True
    run.result.vmid = run.state.plan.vmid = vmid
    run.done(action.kind)
    run.digest = run.vm.config().get("digest")


def _map_gpu(run: _Run, action: Action) -> None:
    """Create the GPU's mapping: once per GPU in a `vm up --all` (its threads take turns,
    and one that finds the mapping made by another leaves it)."""
    gpu = str(action.gpu)
    ctx = GpuContext(run.session, gpu)
    with run.session.create_lock:
        if ctx.gpu.mapping and mapping_exists(ctx.client, ctx.gpu.mapping):
            return
        run.say(f"{run.state.desired.name}: creating the PCI mapping of GPU {gpu}")
        map_gpu(ctx, card=run.state.cards[gpu], missing=True)
    run.done(action.kind)


def _map_store(run: _Run, action: Action) -> None:
    """Create the model store's directory mapping, or add this node's entry to it."""
    desired = run.state.desired
    store = run.session.inv.model_store_of(desired.name)
    if store is not None:
        with run.session.create_lock:
            client = run.session.client(desired.host_name)
            if ensure_store(client, store, desired.node) != "unchanged":
                run.say(f"{desired.name}: directory mapping '{store.mapping}' set")
    run.done(action.kind)


def _upload_user_data(run: _Run, action: Action) -> None:
    if action.kind in run.result.applied:
        return  # one upload writes every snippet file the plan lists
    run.say(f"{run.state.desired.name}: uploading cloud-init snippets")
    inv, host, files = run.session.inv, run.state.desired.host_name, run.state.delivery.snippets
    run.upload = Background("aihost-upload", lambda: upload_snippets(inv, host, files))
    run.done(action.kind)


def _upload_iso(run: _Run, action: Action) -> None:
    iso = run.state.delivery.iso
    if iso is None:
        return
    run.say(f"{run.state.desired.name}: uploading {iso.volume}")
    upload_iso(run.node, iso)
    run.done(action.kind)


def _configure_step(run: _Run, action: Action) -> None:
    run.say(f"{run.state.desired.name}: configuring ({len(action.changes)} option(s))")
    if _configure(run, action):
        run.done(action.kind)


def _resize(run: _Run, action: Action) -> None:
    run.say(f"{run.state.desired.name}: growing {action.disk} to {action.size}")
    run.vm.resize(str(action.disk), str(action.size))
    run.done(action.kind)


def _take_gpu(run: _Run, action: Action) -> None:
    """--take-gpu: swap the GPU over; the swap starts this VM."""
    if not run.swapped:
        run.session.snapshot(run.state.desired.host_name, refresh=True)  # the VM may be new
        run.swapped = True
    ctx = GpuContext(run.session, str(action.gpu))
    swap_gpu(ctx, run.state.desired.name, SwapOptions(force=run.options.force, verify=False))
    if action.kind not in run.result.applied:
        run.done(action.kind)


def _gpus_to_start_with(run: _Run) -> list[str]:
    """The GPUs the VM's config names when it starts (a contested one is the swap's)."""
    return [g for g in run.state.desired.gpu_names if g not in run.state.contested]


def _restart(run: _Run, action: Action) -> None:
    run.say(f"{run.state.desired.name}: restarting to apply pending changes")
    run.leases.take(run.vm.vmid, _gpus_to_start_with(run), phase=STARTING)
    run.vm.reboot(int(action.timeout or run.state.desired.start_timeout))
    run.leases.release()
    run.done(action.kind)


def _start(run: _Run, action: Action) -> None:
    timeout = int(action.timeout or run.state.desired.start_timeout)
    run.say(f"{run.state.desired.name}: starting (timeout {timeout} s)")
    # Under the GPUs' leases: a swap moving the card away stops this VM first, and a start
    # outside the lease would give the card back to it in the middle of that swap.
    run.leases.take(run.vm.vmid, _gpus_to_start_with(run), phase=STARTING)
    try:
        task = run.vm.start(timeout, config=run.state.started_config)
    except ApiError as exc:
        # an earlier run's start (killed while waiting for it) got there first
        if "already running" not in exc.message or run.vm.state() != "running":
            raise
        run.say(f"{run.state.desired.name}: already started by an earlier run's start task")
        run.leases.release()
        run.done(action.kind)
        return
    run.leases.release()
    if task.warnings:
        run.result.warnings.append(f"start ended with {task.exitstatus}")
    run.done(action.kind)


def _verify_step(run: _Run, action: Action) -> None:
    if run.options.wait:
        run.result.report = _verify(run.session, run.state, run.vm.vmid, run.options)


def _remove_stale_isos(run: _Run) -> None:
    """Old cloud-init ISOs go once the new one is uploaded (and the VM started with it)."""
    iso = run.state.delivery.iso
    if iso is not None and iso.stale and "upload-iso" in run.result.applied:
        try:
            remove_volumes(run.node, iso.stale)
        except ApiError as exc:
            run.result.warnings.append(f"old cloud-init ISOs left on the storage: {exc}")


_STEPS: dict[str, Callable[[_Run, Action], None]] = {
    "clone": _make,
    "create": _make,
    "map-gpu": _map_gpu,
    "create-store": _map_store,
    "update-store": _map_store,
    "upload-user-data": _upload_user_data,
    "upload-iso": _upload_iso,
    "configure": _configure_step,
    "resize": _resize,
    "take-gpu": _take_gpu,
    "restart": _restart,
    "start": _start,
    "verify": _verify_step,
}
# A fresh VM is removed again when one of these fails (its start leaves it in place).
_BEFORE_START = frozenset({"map-gpu", "upload-user-data", "upload-iso", "configure", "resize"})
# The steps that go on while the user-data is uploaded over SSH (one upload writes every
# snippet file): configure and resize do not need the files (qemu-server checks only the
# format of cicustom's volume ids when it is set, and reads the files at the VM's start),
# so every other step waits for the upload to have ended.
_WHILE_UPLOADING = frozenset({"upload-user-data", "configure", "resize"})


def _configure(run: _Run, action: Action) -> bool:
    """One config write with digest; GPUs are attached under their lease, held until the
    VM's start has ended. False when nothing is left to write here."""
    session, state = run.session, run.state
    contested = [GpuRef.of(session.inv.gpus[g]) for g in state.contested]
    changes = [
        c
        for c in action.changes
        if not (c.key.startswith("hostpci") and c.new and names_any(c.new, contested))
    ]
    if not changes:
        return False  # only contested GPUs: the swap attaches them (an empty write is refused)
    params: dict[str, Any] = {c.key: c.new for c in changes if c.new is not None}
    deletes = [c.key for c in changes if c.new is None]
    if deletes:
        params["delete"] = ",".join(deletes)
    claimed = [g for g in action.gpus if g not in state.contested]
    run.leases.take(run.vm.vmid, claimed, phase=ATTACHING)
    run.vm.write(params, digest=run.digest)
    return True


def _verify(session: Session, state: VmState, vmid: int, options: UpOptions) -> GuestReport:
    desired = state.desired
    vm = session.inv.vms[desired.name]
    # an edited user-data the guest has not run yet cannot have pulled the new models
    models = [] if state.user_data_pending else vm.models
    return verify_vm(
        session,
        desired.name,
        vmid,
        agent_timeout=options.agent_timeout,
        expect_gpu=bool(desired.gpu_names),
        runtime=vm.runtime,
        models=models,
        instance_id=instance_id(desired.name, state.generation),
    )
