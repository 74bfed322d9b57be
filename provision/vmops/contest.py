"""Several runs at once, each with a VM of its own made for one purpose (a bake of one
recipe, the VM of one inventory name): exactly one goes on, the others stop (exit 4) and
remove their own VM. Two operators on two machines share only Proxmox, so the contest
lives in the VMs themselves.

Each run creates its own VM (qemu-server refuses a second VM of one vmid: `PVE/API2/Qemu.pm`
`clone_vm`, and `create_vm` through `create_and_lock_config`), its description naming the
purpose and the run's owner (user@host:pid) from the create request on. Once its own
create task has ended, the run reads its own config's digest and lists the node's VMs
(live names: `/nodes/{node}/qemu`); of the other VMs carrying the contest's name
(contenders: while a clone or create task runs its VM lists as "VM N", qemu-server
`vmstatus`, so only finished creates are seen):

- a contender that is finished (a template, a configured VM) or has committed: this run
  loses; so does one with a lower vmid;
- a contender with a higher vmid that has not committed: it is told to yield, by a write
  to its description guarded by its digest (a compare-and-set: `update_vm_api` runs
  `PVE::Tools::assert_if_modified` under the VM's config lock).

Then it commits: a write to its own description guarded by the digest it read before
listing; a contender that made it yield changed that digest, so the commit fails, and the
run loses. Each run lists only after its own create task ended, so of two runs the one
that lists later sees the other's VM complete (its task ended before the earlier listing):
if it has the higher vmid, or the other committed, it loses; if the lower, its yield and
the other's commit are two compare-and-sets on one config, and one fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provision.errors import ApiError, ConflictError
from provision.pve.node import Node
from provision.pve.vm import Vm, config_gone

YIELDED = "yielded"
ATTEMPTS = 5
CHANGED = re.compile(r"checksum mismatch|digest|file change(?:d)? by other user", re.I)

Row = dict[str, Any]
Config = dict[str, Any]


@dataclass(frozen=True)
class Contest:
    """What one contest is about.

    name: the name every contender carries in the node's VM list; state: the prefix of
    the description line recording a yield or a commit; kind(row, config): None when that
    VM is no contender, True when it is finished (it wins), False when it is contending;
    owner(config): the run that made it; lost(vmid, node, owner): this run's error when
    that VM wins; committed: the state a commit records; known: vmids that take no part
    (finished before this run began)."""

    name: str
    state: str
    kind: Callable[[Row, Config], bool | None]
    owner: Callable[[Config], str | None]
    lost: Callable[[int, str, str | None], ConflictError]
    committed: str
    known: frozenset[int] = field(default_factory=frozenset)


def line_value(description: object, prefix: str) -> str | None:
    """The value of the description line starting with prefix, or None."""
    for line in str(description or "").splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    return None


def with_state(description: object, prefix: str, state: str) -> str:
    """description with its state line (prefix) set to state."""
    lines = [ln for ln in str(description or "").splitlines() if not ln.startswith(prefix)]
    return "\n".join([*lines, prefix + state])


def state_of(config: Config, contest: Contest) -> str:
    """The contender's recorded state: "", contest.committed or "yielded to VM N"."""
    return str(line_value(config.get("description"), contest.state) or "")


def claim(vm: Vm, contest: Contest, read: tuple[Config, list[Row]] | None = None) -> None:
    """Make vm the one VM of the contest that goes on, or raise contest.lost (the caller
    removes vm then). read: vm's own config and its node's VM list, the list read after
    the config (the commit's digest guard covers what the list shows only then); without
    it both are read here, in that order."""
    own, rows = read if read is not None else (vm.config(), None)
    if state_of(own, contest).startswith(YIELDED):
        raise contest.lost(_yielder(own, contest), vm.node, None)
    node = Node(vm.api, vm.node)
    for row in sorted(node.vms() if rows is None else rows, key=lambda r: int(r["vmid"])):
        vmid = int(row["vmid"])
        if vmid == vm.vmid or row.get("name") != contest.name or vmid in contest.known:
            continue
        rival = _contender(node.vm(vmid), row, contest)
        if rival is None or state_of(rival, contest).startswith(YIELDED):
            continue
        done = bool(contest.kind(row, rival)) or state_of(rival, contest) == contest.committed
        if vmid < vm.vmid or done:
            raise contest.lost(vmid, vm.node, contest.owner(rival))
        _make_yield(node.vm(vmid), row, contest, vm.vmid)
    commit(vm, contest, own)


def _yielder(config: Config, contest: Contest) -> int:
    last = state_of(config, contest).rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _contender(vm: Vm, row: Row, contest: Contest) -> Config | None:
    """The config of a VM carrying the contest's name if it takes part (else None)."""
    try:
        config = vm.config()
    except ApiError as exc:
        if config_gone(exc.message):  # removed meanwhile (a loser removes its VM)
            return None
        raise
    return None if contest.kind(row, config) is None else config


def _make_yield(rival: Vm, row: Row, contest: Contest, winner: int) -> None:
    """Tell a contender with a higher vmid to yield, unless it committed first (then
    lose)."""
    for _ in range(ATTEMPTS):
        config = _contender(rival, row, contest)
        if config is None or state_of(config, contest).startswith(YIELDED) or config.get("lock"):
            return  # gone, told by another, or busy (its run lists after this one)
        if contest.kind(row, config) or state_of(config, contest) == contest.committed:
            raise contest.lost(rival.vmid, rival.node, contest.owner(config))
        try:
            rival.set_now(
                {
                    "description": with_state(
                        config.get("description"), contest.state, f"{YIELDED} to VM {winner}"
                    )
                },
                digest=config.get("digest"),
            )
            return
        except ApiError as exc:
            if config_gone(exc.message):
                return
            if not CHANGED.search(exc.message):
                raise
    raise ConflictError(f"{contest.name}: VM {rival.vmid} kept changing while claiming")


def commit(vm: Vm, contest: Contest, own: Config) -> None:
    """Mark vm as the one that goes on, guarded by the digest read before the listing."""
    for _ in range(ATTEMPTS):
        try:
            description = with_state(own.get("description"), contest.state, contest.committed)
            vm.set_now({"description": description}, digest=own.get("digest"))
            return
        except ApiError as exc:
            if not CHANGED.search(exc.message):
                raise
        own = vm.config()
        if state_of(own, contest).startswith(YIELDED):
            raise contest.lost(_yielder(own, contest), vm.node, None)
    raise ConflictError(f"{contest.name}: VM {vm.vmid} kept changing while claiming")
