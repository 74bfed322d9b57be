"""`aihost template bake NAME`: build a GPU-ready Proxmox template from a `bake:` recipe.

Idempotent: the template's description records the recipe's digest (sha256 of the
canonical recipe and its bake user-data); a re-run with the same digest changes nothing.
A changed recipe bakes a new template first and removes the old one only after the new
one succeeded; an old one that linked clones still use is kept (Proxmox refuses to
destroy it: "base volume ... is still in use by linked cloned") and renamed NAME-VMID.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provision.cloudinit.bake import recipe_digest, recipe_of, render_bake
from provision.delivery.plan import delivery_mode
from provision.errors import ApiError, ConflictError, InputError
from provision.inventory.model import Recipe
from provision.preflight.bake import bake_requirements, check_bake
from provision.pve.cluster import ClusterSnapshot, VmInfo
from provision.pve.node import Node
from provision.pve.session import Session
from provision.vmops.bake_claim import claim, claim_description, clear_leftovers
from provision.vmops.bake_vm import (
    bake_config,
    bake_mark,
    configure_and_start,
    detach_bake_data,
    make_bake_vm,
    marked_digest,
    remove_bake_vm,
    wait_powered_off,
)

LINKED = "still in use by linked clone"


@dataclass(frozen=True)
class BakeOutcome:
    """What a bake did: the template, its digest, and the old templates it replaced."""

    name: str
    node: str
    vmid: int
    digest: str
    changed: bool
    seconds: float = 0.0
    replaced: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The outcome as `--output json` prints it."""
        return {
            "template": self.name,
            "node": self.node,
            "vmid": self.vmid,
            "digest": self.digest,
            "result": "baked" if self.changed else "no changes",
            "seconds": round(self.seconds, 1),
            "replaced": self.replaced,
            "kept": self.kept,
        }

    def to_text(self) -> str:
        """One line for a person."""
        where = f"template {self.vmid} on {self.node}, digest {self.digest[:12]}"
        if not self.changed:
            return f"{self.name}: no changes ({where})"
        text = f"{self.name}: baked ({where}) in {self.seconds:.0f} s"
        if self.replaced:
            text += f"; removed the old template(s) {', '.join(map(str, self.replaced))}"
        if self.kept:
            text += f"; kept {', '.join(map(str, self.kept))} (linked clones use it), renamed"
        return text


def bake_template(
    session: Session, name: str, *, timeout: float, sleep: Callable[[float], None] = time.sleep
) -> BakeOutcome:
    """Bake recipe name into a template unless one with its digest exists."""
    inv = session.inv
    recipe = recipe_of(inv, name)
    digest = recipe_digest(inv, name)
    client = session.client(recipe.host)
    snapshot = session.snapshot(recipe.host)
    notes = {
        vm.vmid: Node(client, vm.node).vm(vm.vmid).config().get("description")
        for vm in snapshot.by_name(name)
    }
    marks = {vmid: marked_digest(text, name) for vmid, text in notes.items()}
    ours = [vm for vm in snapshot.by_name(name) if marks[vm.vmid] is not None]
    current = [vm for vm in ours if vm.template and marks[vm.vmid] == digest]
    if current:
        return BakeOutcome(name, current[0].node, current[0].vmid, digest, changed=False)
    _refuse_foreign(snapshot, name, marks)
    source = _source(snapshot, recipe.source, inv.bake) if recipe.image is None else None
    _preflight(session, recipe, source, [vm.vmid for vm in ours if vm.template])
    clear_leftovers(session, name, [(vm, notes[vm.vmid]) for vm in ours if not vm.template])
    user_data = render_bake(inv, name, digest).text
    vm = make_bake_vm(session, name, recipe, source, claim_description(bake_mark(name, digest)))
    try:
        claim(vm, name, {v.vmid for v in snapshot.by_name(name) if v.template})
        configure_and_start(session, vm, name, recipe, user_data, digest)
        seconds = wait_powered_off(session, vm, name, timeout, sleep)
        detach_bake_data(session, vm, name, recipe)
        session.progress(f"bake {name}: converting VM {vm.vmid} to a template")
        vm.make_template()
    except BaseException:
        remove_bake_vm(session, vm, name)
        raise
    replaced, kept = _replace(session, name, [v for v in ours if v.template])
    return BakeOutcome(name, vm.node, vm.vmid, digest, True, seconds, replaced, kept)


def _preflight(
    session: Session, recipe: Recipe, source: VmInfo | None, replacing: list[int]
) -> None:
    """Every privilege and storage content type the bake needs, before its first write."""
    host = session.inv.hosts[recipe.host]
    iso = delivery_mode(host) == "iso"
    config = bake_config(session, recipe)
    needs = bake_requirements(
        recipe,
        config,
        storage=host.storage,
        clone_of=source.vmid if source else None,
        iso=iso,
        replacing=replacing,
    )
    contents: dict[str, set[str]] = {host.storage.disks: {"images"}}
    cloud = host.storage.iso if iso else host.storage.snippets
    contents.setdefault(cloud, set()).add("iso" if iso else "snippets")
    if recipe.image is not None:
        contents.setdefault(recipe.image.split(":", 1)[0], set()).add("import")
    check_bake(session, recipe, needs, contents, session.progress)


def _refuse_foreign(snapshot: ClusterSnapshot, name: str, marks: dict[int, str | None]) -> None:
    """A template of the recipe's name that no bake made would make the name ambiguous."""
    for vm in snapshot.by_name(name):
        if vm.template and marks[vm.vmid] is None:
            raise ConflictError(
                f"template '{name}' (VM {vm.vmid} on {vm.node}) was not baked by aihost",
                hint="rename the recipe (and the VMs' template: naming it), or that template",
            )


def _source(snapshot: ClusterSnapshot, source: str, recipes: dict[str, Any]) -> VmInfo:
    """The template a recipe starts from (on any node; shared storage lets it cross)."""
    found = [vm for vm in snapshot.by_name(source) if vm.template]
    if found:
        return found[0]
    hint = (
        f"bake it first: `aihost template bake {source}`"
        if source in recipes
        else "name a template the cluster has, or a cloud image (STORAGE:import/FILE)"
    )
    raise InputError(f"no template named '{source}' in the cluster to bake from", hint=hint)


def _replace(session: Session, name: str, olds: list[VmInfo]) -> tuple[list[int], list[int]]:
    """Remove the templates the new one replaces; keep (renamed NAME-VMID) those that
    linked clones use, which Proxmox refuses to destroy (qemu-server destroy_vm)."""
    replaced, kept = [], []
    for old in olds:
        vm = Node(session.client(session.inv.bake[name].host), old.node).vm(old.vmid)
        try:
            vm.destroy(what=f"remove the old template {old.vmid}")
            replaced.append(old.vmid)
        except ApiError as exc:
            if LINKED not in exc.message:
                session.progress(
                    f"bake {name}: could not remove the old template {old.vmid}: {exc}"
                )
            vm.set_now({"name": f"{name}-{old.vmid}"})
            kept.append(old.vmid)
    return replaced, kept
