"""Two `template bake NAME` at once (two operators on two machines share only Proxmox):
one bakes, the other stops with exit 4 and leaves nothing behind.

The claim lives in the bake VMs themselves. Each run creates its own bake VM (qemu-server
refuses a second VM of one vmid: `PVE/API2/Qemu.pm` `clone_vm`, and `create_vm` through
`create_and_lock_config`), its description naming the recipe and the run's owner
(user@host:pid) from the create request on. The run then reads its own config's digest
and lists the node's VMs (live names: `/nodes/{node}/qemu`); of the other bake VMs of the
recipe (rivals):

- a rival with a lower vmid, or one that has committed: this run loses;
- a rival with a higher vmid that has not: it is told to yield, by a write to its
  description guarded by its digest (a compare-and-set: `update_vm_api` runs
  `PVE::Tools::assert_if_modified` under the VM's config lock).

Then it commits: a write to its own description guarded by the digest it read before
listing; a rival that made it yield changed that digest, so the commit fails, and the run
loses. Each run lists only after its own create task ended, so of two runs the one that
lists later sees the other's VM complete: if it has the higher vmid it loses; if the lower,
its yield and the other's commit are two compare-and-sets on one config, and one fails.
A loser removes its VM before anything else is written (no user-data is uploaded yet).
"""

from __future__ import annotations

import re
from typing import Any

from provision.errors import ApiError, ConflictError
from provision.gpu.lease import owner_alive, this_owner
from provision.pve.node import Node
from provision.pve.session import Session
from provision.pve.vm import Vm
from provision.vmops.bake_vm import marked_digest, remove_bake_vm

OWNER = "aihost-bake-owner: "
STATE = "aihost-bake-state: "
COMMITTED = "baking"
ATTEMPTS = 5
CHANGED = re.compile(r"checksum mismatch|digest|file change(?:d)? by other user", re.I)
GONE = re.compile(r"Configuration file '[^']*' does not exist")  # load_config's die


def claim_description(mark: str) -> str:
    """The description a new bake VM is created with: the recipe's mark and its owner."""
    return f"{mark}\n{OWNER}{this_owner()}"


def line_value(description: object, prefix: str) -> str | None:
    """The value of the description line starting with prefix, or None."""
    for line in str(description or "").splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    return None


def _with_state(description: object, state: str) -> str:
    lines = [ln for ln in str(description or "").splitlines() if not ln.startswith(STATE)]
    return "\n".join([*lines, STATE + state])


def _yielded(config: dict[str, Any]) -> bool:
    return str(line_value(config.get("description"), STATE) or "").startswith("yielded")


def _lost(name: str, rival: int, node: str, owner: str | None) -> ConflictError:
    by = f" by {owner}" if owner else ""
    return ConflictError(
        f"another `template bake {name}` runs at the same time (VM {rival} on {node}{by}); "
        "this run stopped and removed its own bake VM",
        hint=f"wait for it to finish: `aihost template bake {name}` then has nothing to do",
    )


def claim(vm: Vm, name: str, known: set[int]) -> None:
    """Make vm the one bake VM of recipe name that goes on, or raise ConflictError (the
    caller removes vm then). known: the recipe's templates this run saw at its start; a
    new one is a rival's bake that ended before this listing."""
    own = vm.config()
    if _yielded(own):
        raise _lost(name, _yielder(own), vm.node, None)
    node = Node(vm.api, vm.node)
    for row in sorted(node.vms(), key=lambda r: int(r["vmid"])):
        vmid = int(row["vmid"])
        if vmid == vm.vmid or row.get("name") != name or vmid in known:
            continue
        rival = _rival_config(node.vm(vmid), name)
        if rival is None or _yielded(rival):
            continue
        owner = line_value(rival.get("description"), OWNER)
        done = bool(row.get("template")) or line_value(rival.get("description"), STATE) == COMMITTED
        if vmid < vm.vmid or done:
            raise _lost(name, vmid, vm.node, owner)
        _make_yield(node.vm(vmid), name, vm.vmid)
    _commit(vm, name, own)


def _yielder(config: dict[str, Any]) -> int:
    text = str(line_value(config.get("description"), STATE) or "")
    return int(text.rsplit(" ", 1)[-1]) if text.rsplit(" ", 1)[-1].isdigit() else 0


def _rival_config(vm: Vm, name: str) -> dict[str, Any] | None:
    """The config of a VM named like the recipe if it is a bake VM of it (else None)."""
    try:
        config = vm.config()
    except ApiError as exc:
        if GONE.search(exc.message):  # removed meanwhile (a loser removes its VM)
            return None
        raise
    if marked_digest(config.get("description"), name) is None:
        return None
    return config


def _make_yield(rival: Vm, name: str, winner: int) -> None:
    """Tell a rival with a higher vmid to yield, unless it committed first (then lose)."""
    for _ in range(ATTEMPTS):
        config = _rival_config(rival, name)
        if config is None or _yielded(config) or config.get("lock"):
            return  # gone, told by another, or still being created (it will see us)
        description = config.get("description")
        if line_value(description, STATE) == COMMITTED:
            raise _lost(name, rival.vmid, rival.node, line_value(description, OWNER))
        try:
            rival.set_now(
                {"description": _with_state(description, f"yielded to VM {winner}")},
                digest=config.get("digest"),
            )
            return
        except ApiError as exc:
            if GONE.search(exc.message):
                return
            if not CHANGED.search(exc.message):
                raise
    raise ConflictError(f"bake {name}: VM {rival.vmid} kept changing while claiming the bake")


def _commit(vm: Vm, name: str, own: dict[str, Any]) -> None:
    """Mark vm as the bake that goes on, guarded by the digest read before the listing."""
    for _ in range(ATTEMPTS):
        try:
            vm.set_now(
                {"description": _with_state(own.get("description"), COMMITTED)},
                digest=own.get("digest"),
            )
            return
        except ApiError as exc:
            if not CHANGED.search(exc.message):
                raise
        own = vm.config()
        if _yielded(own):
            raise _lost(name, _yielder(own), vm.node, None)
    raise ConflictError(f"bake {name}: VM {vm.vmid} kept changing while claiming the bake")


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
