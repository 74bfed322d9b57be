"""Run the pre-flight for planned VMs: every gap reported at once, before any write."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provision.errors import PreflightError
from provision.plan.store import dirid
from provision.preflight.permissions import (
    Requirement,
    grant_commands,
    missing,
    requirement,
)
from provision.preflight.privileges import DRIVE_RE, bridge_vnets, drive_calls, key_calls
from provision.pve.access import effective_permissions

if TYPE_CHECKING:
    from provision.plan.model import Action, Change

if TYPE_CHECKING:
    from provision.pve.session import Session
    from provision.vmops.planner import VmState


@dataclass
class PreflightReport:
    """What is missing for a host: privileges, storage content types, auth kind."""

    host: str
    auth_id: str
    privileges: list[Requirement] = field(default_factory=list)
    storage: list[str] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is missing."""
        return not (self.privileges or self.storage or self.auth)

    def problems(self) -> list[str]:
        """One line per gap."""
        lines = [f"missing {' or '.join(r.any_of)} on {r.acl} ({r.why})" for r in self.privileges]
        return lines + self.storage + self.auth

    def to_json(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return {
            "host": self.host,
            "auth_id": self.auth_id,
            "ok": self.ok,
            "problems": self.problems(),
            "fix": grant_commands(self.auth_id, self.privileges) if self.privileges else [],
        }


def requirements_for(session: Session, state: VmState, *, verify: bool) -> list[Requirement]:
    """The privileges state's plan needs, with the reason for each: its actions walked in
    the order the executor carries them out."""
    kinds = {a.kind for a in state.plan.actions}
    needs: list[Requirement] = []
    for action in state.plan.actions:
        if action.kind == "verify" and not verify:
            continue
        needs += _action_needs(session, state, action, made=bool(kinds & {"clone", "create"}))
    return needs


def _action_needs(
    session: Session, state: VmState, action: Action, *, made: bool
) -> list[Requirement]:
    """What one action needs."""
    vmid: object = state.vmid or ""
    storage = state.desired.disk_storage
    kind = action.kind
    needs: list[Requirement] = []
    if kind == "clone" and state.template is not None:
        needs += [
            requirement("clone", "clone the template", vmid=state.template.vmid),
            requirement("clone-allocate", "create the VM", newid=vmid),
            requirement("disk-space", "the VM's disks", storage=storage),
        ]
        for key, value in sorted(state.config.items()):
            if re.fullmatch(r"net\d+", key):
                needs += _bridges(str(value), f"clone the template's {key}")
    elif kind == "create":
        needs += [
            requirement("create", "create the VM", vmid=vmid),
            requirement("disk-space", "the VM's disks", storage=storage),
            requirement("configure-hw", "set scsihw", vmid=vmid),
            requirement("configure-disk", "set boot", vmid=vmid),
        ]
    elif kind == "map-gpu":
        needs.append(requirement("mapping-create", f"create the PCI mapping of {action.gpu}"))
    elif kind in ("create-store", "update-store"):
        store = session.inv.model_store_of(state.desired.name)
        call = "dirmap-create" if kind == "create-store" else "dirmap-update"
        needs.append(
            requirement(call, "the model store's mapping", id=store.mapping if store else "")
        )
    elif kind == "resize":
        on = storage if made else _storage_of(state)
        needs += [
            requirement("resize", "grow the disk", vmid=vmid),
            requirement("disk-space", "grow the disk", storage=on),
        ]
    elif kind in ("start", "take-gpu"):
        needs.append(requirement("power", "start the VM", vmid=vmid))
    elif kind == "verify":
        needs.append(requirement("agent-exec", "verify the guest through its agent", vmid=vmid))
    elif kind == "upload-iso":
        needs += _iso_needs(session, state)
    for change in action.changes:
        needs += change_requirements(change, vmid, create=kind == "create")
    return needs + _gpu_needs(session, action.gpus)


def _gpu_needs(session: Session, gpus: tuple[str, ...]) -> list[Requirement]:
    """Attaching GPUs: Mapping.Use and the lease's register (mapping or node notes)."""
    needs = []
    for gpu_name in gpus:
        gpu = session.inv.gpus[gpu_name]
        if gpu.mapping:
            needs.append(requirement("mapping-use", f"attach GPU {gpu_name}", id=gpu.mapping))
            needs.append(
                requirement("mapping-lease", f"the lease of GPU {gpu_name}", id=gpu.mapping)
            )
        else:
            needs.append(requirement("node-notes", f"the lease of GPU {gpu_name}"))
    return needs


def _iso_needs(session: Session, state: VmState) -> list[Requirement]:
    iso_storage = session.inv.hosts[state.desired.host_name].storage.iso
    needs = [requirement("upload-iso", "upload the cloud-init ISO", storage=iso_storage)]
    if state.delivery.iso is not None and state.delivery.iso.stale:
        needs.append(
            requirement("remove-volume", "remove the old cloud-init ISO", storage=iso_storage)
        )
    return needs


def change_requirements(change: Change, vmid: object, *, create: bool) -> list[Requirement]:
    """What writing one config change needs (qemu-server create_vm / update_vm_api): the
    key's class, a drive's old and new value, the bridges of a netN (the old one too when
    it replaces or deletes one), Mapping.Use on a PCI mapping being replaced."""
    key, old, new = change.key, change.old, change.new
    why = f"set {key}" if new is not None else f"delete {key}"
    if DRIVE_RE.fullmatch(key) and not create:
        calls = [c for v in (old, new) if v for c in drive_calls(v)]
    else:
        calls = [c for c in key_calls(key, new or old, create=create) if c != "root-only"]
    needs = [requirement(call, why, vmid=vmid) for call in dict.fromkeys(calls)]
    if re.fullmatch(r"net\d+", key):
        needs += _bridges(new, why)
        if not create:
            needs += _bridges(old, f"replace {key}" if new is not None else why)
    if re.fullmatch(r"virtiofs\d", key):  # check_dir_perm, for the old value too
        for value in (new, None if create else old):
            if value:
                needs.append(requirement("dirmap-use", why, id=dirid(value)))
    if re.fullmatch(r"hostpci\d+", key) and old and not create:
        mapping = re.search(r"(?:^|,)mapping=([^,]+)", old)
        if mapping:
            needs.append(requirement("mapping-use", f"replace {key}", id=mapping.group(1)))
    return needs


def _storage_of(state: VmState) -> str:
    """The storage of the VM's boot disk (resize_vm checks Datastore.AllocateSpace there)."""
    volume = str(state.config.get(state.boot_disk, "")).split(",")[0]
    return volume.partition(":")[0] if ":" in volume else state.desired.disk_storage


def root_only_keys(state: VmState) -> list[str]:
    """Keys the plan writes that qemu-server lets only root@pam set."""
    return sorted(c.key for c in state.changes if key_calls(c.key, c.new) == ("root-only",))


def _bridges(net: str | None, why: str) -> list[Requirement]:
    return [requirement("bridge", f"{why}: bridge {v}", vnet=v) for v in bridge_vnets(net)]


def storage_gaps(session: Session, host_name: str, wanted: dict[str, set[str]]) -> list[str]:
    """Storages that lack a content type the plan needs (one request per node)."""
    node = session.inv.node_of(host_name)
    listed = session.node_storages(host_name, node)
    content = {str(s["storage"]): set(str(s.get("content", "")).split(",")) for s in listed}
    gaps = []
    for storage, types in sorted(wanted.items()):
        if storage not in content:
            gaps.append(
                f"storage '{storage}' does not exist on node {node} (or the token cannot see it)"
            )
            continue
        for kind in sorted(types - content[storage]):
            gaps.append(
                f"storage '{storage}' does not allow content '{kind}' (enable it: "
                f"pvesm set {storage} --content "
                f"{','.join(sorted((content[storage] - {''}) | {kind}))})"
            )
    return gaps


def collect(session: Session, states: list[VmState], *, verify: bool) -> list[PreflightReport]:
    """One report per host the plans write to (reads only; raises nothing for gaps)."""
    by_host: dict[str, list[VmState]] = {}
    for state in states:
        if state.plan.changes_anything:
            by_host.setdefault(state.desired.host_name, []).append(state)
    reports = []
    for host_name, host_states in sorted(by_host.items()):
        client = session.client(host_name)
        result = PreflightReport(host_name, client.auth_id)
        needs = [n for s in host_states for n in requirements_for(session, s, verify=verify)]
        if not client.is_root_ticket:
            permissions = effective_permissions(client)
            result.privileges = missing(permissions, needs)
        result.storage = storage_gaps(session, host_name, _content_needed(session, host_states))
        for state in host_states:
            for gpu_name in state.gpu_attach:
                if session.inv.gpus[gpu_name].pci and not client.is_root_ticket:
                    result.auth.append(raw_pci_problem(gpu_name))
            if not client.is_root_ticket:
                result.auth += [
                    f"only root@pam may set '{key}' (Proxmox refuses it to {client.auth_id})"
                    for key in root_only_keys(state)
                ]
        reports.append(result)
    return reports


def raw_pci_problem(gpu_name: str) -> str:
    """Why a raw-PCI GPU cannot be attached with a token or a non-root login."""
    return (
        f"GPU {gpu_name} is a raw PCI address: only root@pam with a password "
        f"login may attach it (fix: `aihost gpu map {gpu_name}` and mapping:)"
    )


def report_lines(reports: list[PreflightReport]) -> list[str]:
    """Every problem of the failed reports, then the pveum commands that fix privileges."""
    lines = []
    for r in reports:
        if r.ok:
            continue
        lines += [f"pre-flight {r.host}: {line}" for line in r.problems()]
        if r.privileges:
            lines.append("grant with:")
            lines += [f"  {command}" for command in grant_commands(r.auth_id, r.privileges)]
    return lines


def preflight(
    session: Session,
    states: list[VmState],
    *,
    verify: bool,
    report: Callable[[str], None] | None = None,
) -> list[PreflightReport]:
    """Check every host the plans write to; raise PreflightError listing all gaps."""
    reports = collect(session, states, verify=verify)
    failed = [r for r in reports if not r.ok]
    if failed:
        say = report or (lambda _m: None)
        for line in report_lines(failed):
            say(line)
        count = sum(len(r.problems()) for r in failed)
        first = failed[0].problems()[0]
        raise PreflightError(
            f"pre-flight found {count} problem(s), nothing was changed: {first}"
            + (" (and more above)" if count > 1 else "")
        )
    return reports


def _content_needed(session: Session, states: list[VmState]) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {}
    for state in states:
        host = session.inv.hosts[state.desired.host_name]
        kinds = {a.kind for a in state.plan.actions}
        if kinds & {"clone", "create", "configure", "resize"}:
            wanted.setdefault(state.desired.disk_storage, set()).add("images")
        if "upload-user-data" in kinds:
            wanted.setdefault(host.storage.snippets, set()).add("snippets")
        if "upload-iso" in kinds:
            wanted.setdefault(host.storage.iso, set()).add("iso")
        if state.desired.image and "create" in kinds:
            wanted.setdefault(state.desired.image.split(":", 1)[0], set()).add("import")
    return wanted
