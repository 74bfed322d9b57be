"""The plan's note when a new VM is to be cloned from a baked template that is older than
its recipe: the template's description records the digest it was baked from
(provision.vmops.bake_vm.bake_mark), the recipe's current digest is recomputed. A note,
not an error: the VM is made from the template as it is."""

from __future__ import annotations

from provision.cloudinit.bake import recipe_digest
from provision.inventory.model import Inventory
from provision.plan.vmplan import VmState
from provision.vmops.bake_vm import marked_digest


def template_notes(inv: Inventory, state: VmState) -> list[str]:
    """[the note] when state clones a baked template whose recipe changed since, else []."""
    name, template = state.desired.template, state.template
    if state.info is not None or template is None or name is None or name not in inv.bake:
        return []
    baked = marked_digest(state.config.get("description"), name)
    if baked is None:
        return []
    current = recipe_digest(inv, name)
    if baked == current:
        return []
    return [
        f"template '{name}' (VM {template.vmid}) is out of date with its recipe (baked "
        f"{baked[:12]}, recipe now {current[:12]}): `aihost template bake {name}` bakes it "
        "anew; until then new VMs are cloned from the old one"
    ]
