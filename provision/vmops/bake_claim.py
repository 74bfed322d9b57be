"""Two `template bake NAME` at once (two operators on two machines share only Proxmox):
one bakes, the other stops with exit 4 and leaves nothing behind.

The claim lives in the bake VMs themselves (provision.vmops.contest): each run's bake VM
is created with a description naming the recipe and the run's owner (user@host:pid);
once its create task ended, the run makes its VM the one that bakes, or loses to another
run's bake VM of the recipe (a template that VM became counts as finished). A loser
removes its VM before anything else is written (no user-data is uploaded yet).
"""

from __future__ import annotations

from typing import Any

from provision.errors import ConflictError
from provision.gpu.lease import owner_alive, this_owner
from provision.pve.node import Node
from provision.pve.session import Session
from provision.pve.vm import Vm
from provision.vmops import contest
from provision.vmops.bake_vm import marked_digest, remove_bake_vm
from provision.vmops.contest import line_value

OWNER = "aihost-bake-owner: "
STATE = "aihost-bake-state: "
COMMITTED = "baking"


def claim_description(mark: str) -> str:
    """The description a new bake VM is created with: the recipe's mark and its owner."""
    return f"{mark}\n{OWNER}{this_owner()}"


def _lost(name: str, rival: int, node: str, owner: str | None) -> ConflictError:
    by = f" by {owner}" if owner else ""
    return ConflictError(
        f"another `template bake {name}` runs at the same time (VM {rival} on {node}{by}); "
        "this run stopped and removed its own bake VM",
        hint=f"wait for it to finish: `aihost template bake {name}` then has nothing to do",
    )


def _contest(name: str, known: set[int]) -> contest.Contest:
    """Bake VMs of recipe name (their description carries its mark); a template is
    finished."""

    def kind(row: dict[str, Any], config: dict[str, Any]) -> bool | None:
        if marked_digest(config.get("description"), name) is None:
            return None
        return bool(row.get("template"))

    return contest.Contest(
        name=name,
        state=STATE,
        kind=kind,
        owner=lambda config: line_value(config.get("description"), OWNER),
        lost=lambda vmid, node, owner: _lost(name, vmid, node, owner),
        committed=COMMITTED,
        known=frozenset(known),
    )


def claim(vm: Vm, name: str, known: set[int]) -> None:
    """Make vm the one bake VM of recipe name that goes on, or raise ConflictError (the
    caller removes vm then). known: the recipe's templates this run saw at its start; a
    new one is a rival's bake that ended before this listing."""
    contest.claim(vm, _contest(name, known))


def _commit(vm: Vm, name: str, own: dict[str, Any]) -> None:
    """Mark vm as the bake that goes on, guarded by the digest read before the listing."""
    contest.commit(vm, _contest(name, set()), own)


def clear_leftovers(session: Session, name: str, leftovers: list[tuple[Any, object]]) -> None:
    """Bake VMs of this recipe that never became templates ((VmInfo, description) pairs):
    one whose run is gone (its owner process on this machine ended, or a stopped one
    without an owner) is removed; one a rival told to yield is left to its run; any other
    may be a bake in progress (exit 4, after the gone ones are removed)."""
    client = session.client(session.inv.bake[name].host)
    busy = []
    for info, description in leftovers:
        owner = line_value(description, OWNER)
        if owner is not None and not owner_alive(owner):
            remove_bake_vm(session, Node(client, info.node).vm(info.vmid), name)
        elif str(line_value(description, STATE) or "").startswith("yielded"):
            continue
        elif owner is None and info.status == "stopped":
            remove_bake_vm(session, Node(client, info.node).vm(info.vmid), name)
        else:
            busy.append((info, owner))
    for info, owner in busy[:1]:
        by = f" for {owner}" if owner else ""
        raise ConflictError(
            f"VM {info.vmid} on {info.node} is baking '{name}' ({info.status}){by}: "
            "another `template bake` runs, or a killed one left it",
            hint=f"wait for it to finish; if its run is gone, remove it (`qm stop "
            f"{info.vmid}; qm destroy {info.vmid}` on {info.node}) and re-run",
        )
