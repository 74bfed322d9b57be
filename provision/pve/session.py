"""One command's view of the world: API clients and cluster snapshots, made once per host."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from provision.inventory.model import Inventory
from provision.pve.client import PveClient
from provision.pve.cluster import ClusterSnapshot, VmInfo, node_vms
from provision.pve.connect import connect
from provision.pve.node import Node

Progress = Callable[[str], None]
Events = Callable[[dict[str, Any]], None]


def _quiet(_message: Any) -> None:
    return None


class Background:
    """work() running in a daemon thread from now on; result() waits for it and returns its
    value or raises its error (the same exception object, so it reads as if raised here)."""

    def __init__(self, name: str, work: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # handed to the thread that asks for the result
            self._error = exc

    def result(self) -> Any:
        """work()'s return value, once it is done; its exception if it raised one."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def join(self) -> None:
        """Wait for work() to end, whatever its outcome (nothing is left running)."""
        self._thread.join()


class Session:
    """Connections and cluster snapshots for one aihost command, shared by its VMs."""

    def __init__(
        self,
        inv: Inventory,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
        events: Events | None = None,
    ) -> None:
        self.inv = inv
        self.progress: Progress = progress or _quiet
        self.events: Events = events or _quiet  # progress as JSON events (-o json)
        self.clock = clock  # what bounded waits in the guest measure time with
        self._clients: dict[str, PveClient] = {}
        self._snapshots: dict[str, ClusterSnapshot] = {}
        self._node_lists: dict[tuple[str, str], list[VmInfo] | None] = {}
        self._lock = threading.RLock()
        self.create_lock = threading.Lock()
        self._early: dict[Hashable, Background] = {}
        self._kept: dict[Hashable, Any] = {}
        self._storages: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def client(self, host_name: str) -> PveClient:
        """The API client of an inventory host (connected on first use)."""
        with self._lock:
            if host_name not in self._clients:
                self._clients[host_name] = connect(self.inv, host_name, progress=self.progress)
            return self._clients[host_name]

    def snapshot(self, host_name: str, *, refresh: bool = False) -> ClusterSnapshot:
        """The host's cluster (which VMs exist where, their live names and states), read
        once per command; refresh after writes that a later step must see."""
        api = self.inv.hosts[host_name].api
        with self._lock:
            if refresh or api not in self._snapshots:
                known = (
                    {}
                    if refresh
                    else {
                        node: rows
                        for (where, node), rows in self._node_lists.items()
                        if where == api
                    }
                )
                snapshot = ClusterSnapshot.read(self.client(host_name), known)
                self._snapshots[api] = snapshot
                for node in {vm.node for vm in snapshot.vms} - snapshot.unreachable:
                    self._node_lists[(api, node)] = [vm for vm in snapshot.vms if vm.node == node]
            return self._snapshots[api]

    def node_vms(self, host_name: str, node: str) -> list[VmInfo] | None:
        """One node's VMs, live (GET /nodes/{node}/qemu), read once per command (None when
        the node does not answer)."""
        api = self.inv.hosts[host_name].api
        with self._lock:
            if (api, node) not in self._node_lists:
                self._node_lists[(api, node)] = node_vms(self.client(host_name), node)
            return self._node_lists[(api, node)]

    def node_storages(self, host_name: str, node: str) -> list[dict[str, Any]]:
        """The storages a node lists for the caller (GET /nodes/{node}/storage), read once
        per command: the plan and its pre-flight look at the same list (aihost never
        changes a storage)."""
        api = self.inv.hosts[host_name].api
        with self._lock:
            if (api, node) not in self._storages:
                self._storages[(api, node)] = Node(self.client(host_name), node).storages()
            return self._storages[(api, node)]

    def start_early(self, key: Hashable, work: Callable[[], Any]) -> None:
        """Begin work() in a background thread now (once per key); whoever needs its result
        later takes it with take_early(key). Unclaimed work just ends on its own."""
        with self._lock:
            if key not in self._early:
                self._early[key] = Background(f"aihost-early-{len(self._early)}", work)

    def take_early(self, key: Hashable) -> Background | None:
        """The background work started under key (handed out once), or None."""
        with self._lock:
            return self._early.pop(key, None)

    def keep_read(self, key: Hashable, value: Any) -> None:
        """Keep a read this command made for a read-only pre-check later in the command
        (the way a command's first node list serves its pre-checks); take_read hands it
        out once."""
        with self._lock:
            self._kept[key] = value

    def take_read(self, key: Hashable) -> Any:
        """The read kept under key (handed out once), or None."""
        with self._lock:
            return self._kept.pop(key, None)

    def request_count(self) -> int:
        """API requests sent by this session's clients so far."""
        return sum(client.request_count() for client in self._clients.values())
