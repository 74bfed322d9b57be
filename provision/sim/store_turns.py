"""VMs sharing a node's model store take turns fetching their models (part of the guest
MODEL), as the real guest's `aihost-state store-lock` makes them (templates/scripts/
aihost-state.py.j2, aihost-boot.sh.j2): a first boot's models phase takes the store's
lock when it begins, or waits until the VMs whose models phase began before it are done,
and then finds their models in the store.

The turns follow from the VMs' records alone (when each first boot began, its user-data,
its disk, the store bytes it found then) under the request's durations, so a request
sees the same turns whenever it is made: no turn is stored. A first boot's own models
phase begins at a time that does not depend on the store (driver, reboot and runtime
come before it), which orders the queue; a VM's turn ends when its models phase does,
its own wait included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provision.sim.guest_disk import baked_record
from provision.sim.guest_state import Timing, first_boot_line, image_skips
from provision.sim.guest_userdata import parse_user_data
from provision.sim.state import World


@dataclass(frozen=True)
class Turn:
    """A first boot's turn at its store, in seconds since that first boot began: its
    fetch begins at wait_until (0: at once); holders: (until, who) of the VMs it waits
    for, in the order they hold the lock, as their lock's holder file names them; stored:
    {model: bytes} the VMs ahead of it put in the store by then."""

    wait_until: float = 0.0
    holders: tuple[tuple[float, str], ...] = ()
    stored: Mapping[str, int] = field(default_factory=dict)

    def holder(self, t: float) -> str | None:
        """Who holds the lock at t (None: nobody this VM waits for)."""
        return next((who for until, who in self.holders if t < until), None)


def _holder(vmid: int, vm: dict[str, Any]) -> str:
    """The name a VM's lock holder file gives: its host name, instance and process (the
    simulated guest's pid is its vmid)."""
    record = vm["guest"]
    hostname = parse_user_data(record.get("user_data")).hostname or f"vm{vmid}"
    return f"{hostname} (instance {record.get('instance_id')}, pid {vmid})"


def _began(vm: dict[str, Any]) -> float:
    return float(vm["guest"].get("first_boot_at") or 0.0)


def stored_bytes(pull: Mapping[str, Any], turn: Turn) -> int:
    """Bytes of the VM's models it finds in the store when its turn comes: what the store
    held when its first boot began, and what the VMs ahead of it put there."""
    found = pull.get("stored")
    if found is None:  # recorded before per-model bytes were: its total then
        ahead = sum(
            min(int(size), int(turn.stored.get(name, 0)))
            for name, size in (pull.get("models") or {}).items()
        )
        return max(int(pull.get("stored_bytes", 0)), ahead)
    return sum(
        min(int(size), max(int(found.get(name, 0)), int(turn.stored.get(name, 0))))
        for name, size in (pull.get("models") or {}).items()
    )


def timing(
    vm: dict[str, Any], durations: Mapping[str, float], elapsed: float, turn: Turn | None = None
) -> Timing:
    """How far the VM's first boot is, elapsed seconds after it began: what its image
    skips (guest_state.image_skips), the model bytes it finds in the store, and its turn
    there (None: as if it had the store to itself)."""
    turn = turn or Turn()
    cloud = parse_user_data(vm["guest"].get("user_data"))
    return Timing(
        durations=durations,
        elapsed=elapsed,
        baked=image_skips(cloud, baked_record(vm)),
        stored_bytes=stored_bytes(vm["guest"].get("models_pull") or {}, turn),
        models_not_before=turn.wait_until,
        holders=turn.holders,
    )


def _models_span(
    vm: dict[str, Any], durations: Mapping[str, float], turn: Turn | None = None
) -> tuple[float, float] | None:
    """(start, end) of the VM's models phase, absolute (None: it has none), with its turn
    at the store (None: as if it had the store to itself)."""
    cloud = parse_user_data(vm["guest"].get("user_data"))
    for span in first_boot_line(cloud, timing(vm, durations, 0.0, turn)).spans:
        if span.phase == "models" and not span.skipped:
            return _began(vm) + span.start, _began(vm) + span.end
    return None


def _sharing(world: World, vm: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(vmid, record) of the running VMs of vm's node whose first boot fetches into vm's
    store, vm too."""
    store = (vm["guest"].get("models_pull") or {}).get("store")
    if not store:
        return []
    return [
        (int(vmid), other)
        for vmid, other in world["vms"].items()
        if other["node"] == vm["node"]
        and other.get("status") == "running"
        and (other["guest"].get("models_pull") or {}).get("store") == store
    ]


class _Queue:
    """The turns of the first boots sharing one store, worked out once per request."""

    def __init__(
        self, durations: Mapping[str, float], vms: list[tuple[int, dict[str, Any]]]
    ) -> None:
        self.durations = durations
        self.order: list[tuple[tuple[float, float, int], dict[str, Any]]] = []
        for vmid, vm in vms:
            span = _models_span(vm, durations)
            if span is not None:
                self.order.append(((span[0], _began(vm), vmid), vm))
        self.order.sort(key=lambda pair: pair[0])
        self.ends: dict[int, float] = {}

    def turn(self, vm: dict[str, Any]) -> Turn:
        """vm's turn: after every VM whose models phase began before its own."""
        place = next((i for i, (_k, v) in enumerate(self.order) if v is vm), None)
        if place is None:
            return Turn()
        start, began = self.order[place][0][0], _began(vm)
        holders: list[tuple[float, str]] = []
        stored: dict[str, int] = {}
        free = start
        for (_start, _began_at, vmid), other in self.order[:place]:
            end = self._end(vmid, other)
            if end > start:
                holders.append((end - began, _holder(vmid, other)))
            free = max(free, end)
            for name, size in (
                (other["guest"].get("models_pull") or {}).get("models") or {}
            ).items():
                stored[name] = max(stored.get(name, 0), int(size))
        return Turn(wait_until=free - began, holders=tuple(holders), stored=stored)

    def _end(self, vmid: int, vm: dict[str, Any]) -> float:
        """When vm's models phase ends, absolute, its own wait included (the queue before
        it is worked out first: its place comes earlier)."""
        if vmid not in self.ends:
            span = _models_span(vm, self.durations, self.turn(vm))
            self.ends[vmid] = span[1] if span else 0.0
        return self.ends[vmid]


def turn(world: World, durations: Mapping[str, float], vm: dict[str, Any]) -> Turn:
    """vm's turn at its node's model store (Turn() when it has no store or waits for
    none)."""
    return _Queue(durations, _sharing(world, vm)).turn(vm)
