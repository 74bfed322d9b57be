"""A new VM's id when other operators create VMs at the same time.

`GET /cluster/nextid` reserves nothing (pve-manager `PVE/API2/Cluster.pm` `nextid` only
reads the VM list), so two `vm up` in separate processes can be handed the same id; the
slower clone or create is refused with "unable to create VM N: config file already
exists" (qemu-server `PVE/API2/Qemu.pm` `clone_vm`, and `create_vm` through
`create_and_lock_config`) before anything is made. An id aihost picked itself is then
picked again, a bounded number of times; an id the inventory fixes is never changed
(taken meanwhile, it is a conflict: exit 4).
When the id was taken by a VM of the same name (the same VM brought up twice at once),
this run stops with a conflict instead of making a second VM of that name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from provision.errors import ApiError, ConflictError
from provision.pve.api import Api
from provision.pve.cluster import next_vmid
from provision.pve.node import Node

ATTEMPTS = 5
ID_TAKEN = re.compile(
    r"unable to create VM \d+: config file already exists|"
    r"VM \d+ already exists",
    re.I,
)


def create_with_free_id(
    client: Api,
    fixed: int | None,
    create: Callable[[int], Any],
    say: Callable[[str], None],
    name: str,
    node: str,
    again: str | None = None,
) -> tuple[int, Any]:
    """(vmid, create's result): create(vmid) with the inventory's id, else with ids from
    nextid until one is not taken by a concurrent create (again: the conflict's hint when
    that create was of a VM of the same name)."""
    for attempt in range(ATTEMPTS):
        vmid = fixed or next_vmid(client)
        try:
            return vmid, create(vmid)
        except ApiError as exc:
            if fixed and ID_TAKEN.search(exc.message):  # e.g. the same VM brought up twice
                raise ConflictError(
                    f"vmid {vmid} (set in the inventory) was taken by another create "
                    f"meanwhile; nothing was made for '{name}'",
                    hint=again or f"run `aihost vm up {name}` again when it is done",
                ) from exc
            if fixed or not ID_TAKEN.search(exc.message) or attempt == ATTEMPTS - 1:
                raise
        twin = same_name(client, node, name)
        if twin is not None:
            raise ConflictError(
                f"VM '{name}' was created meanwhile by another run (VM {twin})",
                hint=again or f"run `aihost vm up {name}` again when it is done",
            )
        say(f"{name}: VM id {vmid} was taken by another create meanwhile; taking another")
    raise AssertionError("unreachable")  # pragma: no cover


def same_name(client: Api, node: str, name: str) -> int | None:
    """The id of a VM called name on node, from the node's live VM list (the cluster
    list's names come from status broadcasts and lag behind a new VM)."""
    for row in Node(client, node).vms():
        if row.get("name") == name and not row.get("template"):
            return int(row["vmid"])
    return None
