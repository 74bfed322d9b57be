"""Two `vm up X` at once (two operators, or one twice) each make a VM X: exactly one goes
on, the other removes its own and stops with exit 4.

The contest is provision.vmops.contest's, as for bakes: each new VM carries the creation
mark (vm name and owner, provision.delivery.generation) from its clone or create request
on; a VM named X without the mark is a finished VM X (configured, or not aihost's) and
wins. While a clone or create task runs, Proxmox shows its VM as "VM N" (the temporary
config holds only the lock), so a run also waits, bounded, for the create tasks of lower
vmids on the VM's node (and the template's) to end: one of them may be the twin of a run
that was killed and will never take part. Such a twin, whose owner is a process of this
machine that is gone, is removed (it holds nothing yet: the mark goes with the config
write that finishes a VM).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from provision.delivery.generation import being_created, creator_of
from provision.errors import ApiError, ConflictError
from provision.gpu.lease import owner_alive
from provision.plan.desired import MANAGED_TAG
from provision.pve.cluster import VmInfo
from provision.pve.node import Node
from provision.pve.session import Session
from provision.pve.vm import Vm, config_gone
from provision.vmops import contest

STATE = "aihost-claim: "
COMMITTED = "making"
BUSY = ("clone", "create")
WAIT = 120.0

_mine: dict[int, str] = {}  # VMs this process is creating, by name (a fleet's others)
_mine_lock = threading.Lock()


def creating(vmid: int, name: str | None) -> None:
    """Record a VM this process is creating as name (None: forget it)."""
    with _mine_lock:
        if name is None:
            _mine.pop(vmid, None)
        else:
            _mine[vmid] = name


def yielded(description: object) -> bool:
    """True when a VM's description says it yielded to a twin (its run removes it)."""
    return str(contest.line_value(description, STATE) or "").startswith(contest.YIELDED)


def unfinished(description: object, name: str, home: list[VmInfo] | None) -> bool:
    """True when a VM of name with this description is one a run began and did not
    finish, for a re-run to finish: not one told to yield to a twin, and only while no
    finished VM of name is on the node (home: the node's VMs)."""
    if any(vm.name == name and MANAGED_TAG in vm.tags for vm in home or []):
        return False
    return being_created(str(description or ""), name) and not yielded(description)


def making(creator: str, config: dict[str, Any]) -> bool:
    """True when the run creator is making that VM right now (not ours to finish): a
    live process of this machine, or (elsewhere, not known gone) its task still runs."""
    return owner_alive(creator) and (bool(config.get("lock")) or alive_here(creator))


def held(config: dict[str, Any]) -> str:
    """How a VM another run is making is held, for an error line."""
    return f"locked ({config['lock']})" if config.get("lock") else "not finished yet"


def alive_here(owner: str) -> bool:
    """True when owner (user@host:pid) is a live process of this machine."""
    host = owner.rsplit(":", 1)[0].partition("@")[2]
    return host == socket.gethostname() and owner_alive(owner)


def vm_contest(name: str) -> contest.Contest:
    """The contest for VM name: non-templates of that name; marked ones are contenders,
    unmarked ones finished."""

    def kind(row: dict[str, Any], config: dict[str, Any]) -> bool | None:
        if row.get("template"):
            return None
        return not being_created(config.get("description"), name)

    return contest.Contest(
        name=name,
        state=STATE,
        kind=kind,
        owner=lambda config: creator_of(config.get("description"), name),
        lost=lambda vmid, node, owner: _lost(name, vmid, node, owner),
        committed=COMMITTED,
    )


def _lost(name: str, rival: int, node: str, owner: str | None) -> ConflictError:
    by = f" by {owner}" if owner else ""
    return ConflictError(
        f"VM '{name}' was made at the same time by another run (VM {rival} on {node}{by}); "
        "this run removed its own new VM",
        hint=f"run `aihost vm up {name}` again when that run is done",
    )


def settle(session: Session, vm: Vm, name: str, nodes: Iterable[str]) -> None:
    """After vm's create task ended: make it the one VM name, or raise ConflictError (the
    caller removes vm). nodes: where a twin's create may still run.

    vm's own config is read before the node's list: when that first list shows no twin
    still being made, the contest takes both (its commit's digest guard then covers all
    the list shows); after a wait, it reads both again."""
    own = vm.config()
    rows, waited = wait_for_older(session, vm, name, sorted(set(nodes)))
    _remove_orphans(session, vm, name, rows)
    contest.claim(vm, vm_contest(name), None if waited else (own, rows))


def wait_for_older(
    session: Session,
    vm: Vm,
    name: str,
    nodes: list[str],
    *,
    timeout: float = WAIT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[dict[str, Any]], bool]:
    """Wait until no VM with a lower vmid on nodes is still being cloned or created by
    another process (its name is unknown until then), or timeout seconds; the contest
    is decided either way (a live run's twin takes part in it itself). The VM list of
    vm's node as last read, and whether it waited (read the lists more than once)."""
    deadline = clock() + timeout
    said = False
    while True:
        with _mine_lock:  # this process's VMs of other names are no twins
            mine = {vmid for vmid, other in _mine.items() if other != name}
        lists = _lists(vm, nodes)
        busy = [
            int(row["vmid"])
            for rows in lists.values()
            for row in rows
            if row.get("lock") in BUSY
            and int(row["vmid"]) < vm.vmid
            and int(row["vmid"]) not in mine
        ]
        if not busy or clock() >= deadline:
            return lists[vm.node], said
        if not said:
            ids = ", ".join(map(str, busy))
            session.progress(f"{name}: waiting for VM {ids} to be made: it may be a twin")
            said = True
        sleep(0.25)


def _lists(vm: Vm, nodes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The live VM lists of vm's node and nodes; another node that does not answer is
    left out (the contest on vm's node decides all the same)."""
    lists = {vm.node: Node(vm.api, vm.node).vms()}
    for node in (n for n in nodes if n not in lists):
        try:
            lists[node] = Node(vm.api, node).vms()
        except ApiError:
            continue
    return lists


def _remove_orphans(session: Session, vm: Vm, name: str, rows: list[dict[str, Any]]) -> None:
    """Remove the unfinished VMs name (of rows: vm's node's list) of runs that are gone
    (their owner a process of this machine that ended)."""
    node = Node(vm.api, vm.node)
    for row in rows:
        vmid = int(row["vmid"])
        if vmid == vm.vmid or row.get("name") != name or row.get("template"):
            continue
        other = node.vm(vmid)
        try:
            description = other.config().get("description")
            owner = creator_of(description, name)
            if not being_created(description, name) or owner is None or owner_alive(owner):
                continue
            other.destroy(what=f"remove VM {vmid}, left by {owner}")
            session.progress(f"{name}: removed VM {vmid}, left half-made by {owner}")
        except ApiError as exc:  # gone meanwhile, or busy: the contest decides
            if not config_gone(exc.message):
                session.progress(f"{name}: could not remove VM {vmid}: {exc.message}")


def after_create(
    vm: Vm,
    config: dict[str, Any],
    *,
    timeout: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The config of a VM an earlier run began to create, once the clone or create task
    that run left behind has ended (its lock is gone), or as it is after timeout."""
    deadline = clock() + timeout
    while config.get("lock") in ("clone", "create") and clock() < deadline:
        sleep(0.25)
        config = vm.config()
    return config
