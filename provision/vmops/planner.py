"""Read what Proxmox has for a VM, once, and plan it (provision.plan.vmplan.plan_vm).

The reads: the VM's node's live VM list (and the cluster's when that does not settle
which VM is meant), the VM's config with what waits in [PENDING] or the template's config,
the delivery's storage, and each GPU to attach's mapping and holders."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from provision.cloudinit.render import render_user_data
from provision.delivery.generation import (
    being_created,
    creator_of,
    generation_of,
    instance_id,
    meta_data,
    provisioned_digest,
    user_data_digest,
    with_generation,
)
from provision.delivery.iso import iso_prefix
from provision.delivery.network import iso_network
from provision.delivery.plan import plan_delivery
from provision.errors import ConflictError, InputError
from provision.gpu.claim import check_mapped
from provision.gpu.context import GpuContext
from provision.gpu.mapping import find_card
from provision.inventory.model import Inventory
from provision.plan.desired import MANAGED_TAG, DesiredVm, desired_vm, without_gpus
from provision.plan.store import StoreFacts, store_actions, virtiofs_key, with_store, without_store
from provision.plan.vmplan import (
    Actual,
    GpuFacts,
    PlanOptions,
    VmState,
    changes_for,
    gpus_to_attach,
    plan_vm,
)
from provision.pve.api import Api
from provision.pve.cluster import VmInfo
from provision.pve.node import Node
from provision.pve.pci import GpuRef
from provision.pve.session import Session
from provision.vmops import stale_guest, twins
from provision.vmops.bake_note import template_notes
from provision.vmops.locate import locate_vm, managed_on_node, require_not_out_of_reach
from provision.vmops.store import read_store, store_mapping

__all__ = ["VmState", "read_actual", "read_state"]


def read_state(
    session: Session,
    vm_name: str,
    *,
    take_gpu: bool = False,
    reprovision: bool = False,
    defer_gpus: frozenset[str] = frozenset(),
    plan_only: bool = False,
) -> VmState:
    """Read the actual VM (one GET of its config with pending changes, when it exists)
    and plan desired vs actual.

    When the plan attaches a GPU, its holders are checked before anything is written:
    held by another VM is a ConflictError (exit 4), unless take_gpu, which plans a swap.
    GPUs in defer_gpus (a shared GPU another VM of the same `vm up --all` gets) are left
    out: the VM is made without them and left stopped, and the plan says how to move them.
    With plan_only (`vm plan`), a GPU held by another VM is a note in the plan, not an error.
    """
    inv = session.inv
    desired = desired_vm(inv, vm_name)
    deferred = tuple(g for g in desired.gpu_names if g in defer_gpus)
    if deferred:
        desired = without_gpus(desired, inv, list(deferred))
    refs = {name: GpuRef.of(gpu) for name, gpu in inv.gpus.items()}
    store, note = read_store(session, desired)
    has_store = inv.model_store_of(vm_name) is None or store is not None
    actual = read_actual(session, desired, refs, reprovision=reprovision, model_store=has_store)
    if store is not None:
        key = _store_key(actual.config, store)
        desired = with_store(desired, actual.config, key, store.store.mapping)
    elif inv.model_store_of(vm_name) is None:  # the VM does not use its host's store
        mapping = store_mapping(session, desired, actual.config)
        desired, note = without_store(desired, actual.config, mapping, actual.user_data_pending)
    state = plan_vm(desired, actual, refs, PlanOptions(take_gpu, plan_only, deferred))
    if store is not None:
        state.plan.actions[:0] = store_actions(store)
    state.plan.notes += ([note] if note else []) + template_notes(inv, state)
    return state


def _store_key(config: dict[str, Any], facts: StoreFacts) -> str:
    """The virtiofsN key the store goes on (InputError when all ten are taken)."""
    key = virtiofs_key(config, facts.store.mapping)
    if key is None:
        raise InputError("the VM uses all ten virtiofs slots: none is free for the model store")
    return key


def read_actual(
    session: Session,
    desired: DesiredVm,
    refs: dict[str, GpuRef],
    *,
    reprovision: bool = False,
    model_store: bool = True,
) -> Actual:
    """Everything the planner needs from Proxmox and the node, each read once (model_store
    False: the user-data leaves the host's model store out)."""
    client = session.client(desired.host_name)
    info = _locate(session, desired)
    template = None
    pending: tuple[str, ...] = ()
    if info is not None:
        config, pending = _existing_config(client, info, desired)
    else:
        template = _find_source(session, desired)
        config = Node(client, template.node).vm(template.vmid).config() if template else {}
    digest = config.pop("digest", None) if info is not None else None
    actual = _with_delivery(
        session, desired, info, template, config, digest, (reprovision, model_store)
    )
    attach = gpus_to_attach(desired, refs, changes_for(desired, actual, refs))
    gpus = _gpu_facts(session, desired, info.vmid if info else desired.vmid, attach)
    stale = stale_guest.stale_instance(client, info, desired.name, actual)
    return replace(actual, gpus=gpus, pending=pending, stale_guest=stale)


def _with_delivery(
    session: Session,
    desired: DesiredVm,
    info: VmInfo | None,
    template: VmInfo | None,
    config: dict[str, Any],
    digest: str | None,
    flags: tuple[bool, bool],
) -> Actual:
    """The provisioning generation, the rendered cloud-init files and their delivery;
    flags: (re-provision, with the host's model store)."""
    reprovision, model_store = flags
    name = desired.name
    recorded = generation_of(config.get("description")) if info is not None else None
    generation = (recorded or 1) + (1 if reprovision and info is not None else 0)
    network, net0 = iso_network(session.inv, desired, config if info is not None else None)
    files = _cloud_files(session.inv, name, generation, model_store, network)
    # the user-data the guest was provisioned with stays recorded until a re-provision
    current = user_data_digest(files["user-data"])
    kept = provisioned_digest(config.get("description")) if recorded == generation else None
    pending = kept is not None and kept != current
    attached = str(config.get("ide2", ""))
    hold = attached if pending and f":iso/{iso_prefix(name)}" in attached else None
    client = session.client(desired.host_name)
    delivery = plan_delivery(
        session.inv,
        name,
        desired.host_name,
        client,
        files,
        hold_iso=hold,
        early=session.take_early,
        storages=partial(
            session.node_storages, desired.host_name, session.inv.node_of(desired.host_name)
        ),
    )
    if net0 is not None:  # a new VM's MAC address, named by its ISO's network-config
        delivery.config["net0"] = net0
    return Actual(
        info=info,
        template=template,
        config=config,
        digest=digest,
        delivery=delivery,
        description=with_generation(config.get("description"), generation, kept or current),
        keep_description=recorded == generation and kept is not None,
        generation=generation,
        reprovision=reprovision and info is not None,
        user_data_pending=pending,
    )


def _gpu_facts(
    session: Session, desired: DesiredVm, vmid: int | None, gpus: list[str]
) -> dict[str, GpuFacts]:
    """For each GPU to attach: whether another VM holds it (read-only: its lease, in its
    mapping's description, and the node's VM configs), else, when its mapping does not
    exist yet, the card of the mapping to create (found before any write)."""
    facts = {}
    for name in gpus:
        try:
            if not check_mapped(session, desired.name, vmid, name):
                facts[name] = GpuFacts(card=find_card(GpuContext(session, name), None))
        except ConflictError as exc:
            facts[name] = GpuFacts(held=exc)
    return facts


def _locate(session: Session, desired: DesiredVm) -> VmInfo | None:
    """The VM behind the inventory entry: from its node's live list when that settles it
    (a converged re-run reads no more), else from the whole cluster."""
    home = session.node_vms(desired.host_name, desired.node)
    found = managed_on_node(home, desired.name, desired.vmid) or _half_made(session, desired, home)
    if found is not None:
        return found
    snapshot = session.snapshot(desired.host_name)
    info = locate_vm(snapshot, desired.name, desired.vmid)
    if info is None:
        require_not_out_of_reach(snapshot, desired.name)
    return info


def _half_made(session: Session, desired: DesiredVm, home: list[VmInfo] | None) -> VmInfo | None:
    """A VM of this name that an earlier run began to create and did not finish (its
    description still carries the creation mark of the clone/create request): this run
    finishes it (lowest vmid first; provision.vmops.twins.unfinished says which)."""
    node = Node(session.client(desired.host_name), desired.node)
    for vm in sorted(home or [], key=lambda v: v.vmid):
        if (
            vm.name != desired.name
            or vm.template
            or MANAGED_TAG in vm.tags
            or desired.vmid not in (None, vm.vmid)
        ):
            continue
        config = node.vm(vm.vmid).config_if_any()
        if config is None:  # its run lost a twin contest and removed it since the listing
            gone = f"VM {vm.vmid} ({vm.name}) was removed by another run just now"
            raise ConflictError(gone, hint=f"re-run `aihost vm up {desired.name}`")
        if twins.unfinished(config.get("description"), desired.name, home):
            return vm
    return None


def _existing_config(
    client: Api, info: VmInfo, desired: DesiredVm
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The VM's config with pending changes applied (as GET .../config shows it) and the
    keys waiting in [PENDING], both from one GET .../pending; ConflictError when it is
    on another node, locked, or being made by another run."""
    if info.node != desired.node:
        raise ConflictError(
            f"VM '{desired.name}' runs on node '{info.node}', the inventory says '{desired.node}'",
            hint=f"set host: to the entry for {info.node}, or migrate it",
        )
    vm = Node(client, info.node).vm(info.vmid)
    config, pending = vm.config_with_pending()
    if being_created(config.get("description"), desired.name):
        creator = creator_of(config.get("description"), desired.name)
        if creator and twins.making(creator, config):
            raise ConflictError(  # another run is making it right now: not ours to finish
                f"VM {info.vmid} is {twins.held(config)}: aihost run {creator} is "
                f"creating '{desired.name}'",
                hint="wait for that run to end, then re-run",
            )
        config = twins.after_create(vm, config)  # its own fresh config tells, not the list
        lock = config.get("lock")
    else:
        lock = config.get("lock") or info.lock
    if lock:
        raise ConflictError(
            f"VM {info.vmid} is locked ({lock})",
            hint="wait for the running task to end, then re-run",
        )
    return config, pending


def _cloud_files(
    inv: Inventory, vm_name: str, generation: int, model_store: bool, network: str | None
) -> dict[str, bytes]:
    rendered = render_user_data(
        inv, vm_name, instance_id=instance_id(vm_name, generation), model_store=model_store
    )
    files = {
        "user-data": rendered.text.encode(),
        "meta-data": meta_data(vm_name, generation).encode(),
    }
    return files | ({"network-config": network.encode()} if network else {})


def _find_source(session: Session, desired: DesiredVm) -> VmInfo | None:
    if desired.template is None:
        return None
    snapshot = session.snapshot(desired.host_name)
    templates = [vm for vm in snapshot.by_name(desired.template) if vm.template]
    if not templates and desired.template in session.inv.bake:
        raise InputError(
            f"template '{desired.template}' is a bake recipe that is not baked yet",
            hint=f"run `aihost template bake {desired.template}` first",
        )
    if not templates:
        known = sorted({vm.name for vm in snapshot.vms if vm.template})
        raise InputError(
            f"no template named '{desired.template}' in the cluster",
            hint=f"templates there: {', '.join(known) or 'none'}",
        )
    same_node = [t for t in templates if t.node == desired.node]
    return (same_node or templates)[0]
