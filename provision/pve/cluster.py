"""The cluster as one read per command: which guests exist where, with live VM facts.

/cluster/resources?type=vm lists every guest's vmid, node and type live (the cluster's
vmlist), but for VMs its name, status, template and memory are pvestatd's last broadcast
(pve-manager PVE/API2Tools.pm `extract_vm_stats`, refreshed about every 10 s): a new VM
there has no name and status "unknown", a rename or start shows up seconds later. So the
VMs' facts come from GET /nodes/{node}/qemu (qemu-server `vmstatus`: configs and pid
files, live), one request per node that hosts VMs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from provision.errors import ApiError
from provision.pve.api import Api
from provision.pve.vmconfig import is_true


@dataclass(frozen=True)
class VmInfo:
    """One guest as /cluster/resources lists it (type qemu or lxc)."""

    vmid: int
    name: str
    node: str
    status: str
    template: bool = False
    lock: str | None = None
    tags: list[str] = field(default_factory=list)
    maxmem: int = 0
    type: str = "qemu"

    @classmethod
    def from_resource(cls, item: dict[str, Any]) -> VmInfo:
        """Build from one /cluster/resources entry."""
        return cls(
            vmid=int(item["vmid"]),
            name=str(item.get("name") or ""),
            node=str(item.get("node") or ""),
            status=str(item.get("status") or "unknown"),
            template=is_true(item.get("template", 0)),
            lock=str(item["lock"]) if item.get("lock") else None,
            tags=split_tags(item.get("tags")),
            maxmem=int(item.get("maxmem") or 0),
            type=str(item.get("type") or "qemu"),
        )

    @classmethod
    def from_vmstatus(cls, row: dict[str, Any], node: str) -> VmInfo:
        """Build from one GET /nodes/{node}/qemu entry (live)."""
        return cls(
            vmid=int(row["vmid"]),
            name=str(row.get("name") or ""),
            node=node,
            status=str(row.get("status") or "unknown"),
            template=is_true(row.get("template", 0)),
            lock=str(row["lock"]) if row.get("lock") else None,
            tags=split_tags(row.get("tags")),
            maxmem=int(row.get("maxmem") or 0),
        )


def split_tags(value: object) -> list[str]:
    """Proxmox tags ("a;b", also written with ',' or spaces) as a list."""
    if not value:
        return []
    return [t for t in re.split(r"[;, ]+", str(value)) if t]


class ClusterSnapshot:
    """All guests of the cluster at one moment; read once per command."""

    def __init__(self, guests: list[VmInfo], unreachable: set[str] | None = None) -> None:
        self.guests = guests
        self.vms = [g for g in guests if g.type == "qemu"]
        self.unreachable = set(unreachable or ())  # nodes whose VM list did not answer

    @classmethod
    def read(
        cls, client: Api, known: dict[str, list[VmInfo] | None] | None = None
    ) -> ClusterSnapshot:
        """GET /cluster/resources?type=vm, then GET /nodes/{node}/qemu per node with VMs
        (known: node lists this command has read already, not asked again).

        A VM whose node does not answer keeps its broadcast name with status "unknown";
        a VM made since the first read is taken from its node's list.
        """
        items = client.get("/cluster/resources", type="vm") or []
        listed = [
            VmInfo.from_resource(i)
            for i in items
            if isinstance(i, dict)
            and i.get("vmid") is not None
            and i.get("type", "qemu") in ("qemu", "lxc")
        ]
        lists = dict(known or {})
        for node in sorted({g.node for g in listed if g.type == "qemu"} - set(lists)):
            lists[node] = node_vms(client, node)
        live = {vm.vmid: vm for rows in lists.values() for vm in rows or []}
        reached = {node for node, rows in lists.items() if rows is not None}
        guests = [g for g in listed if g.type != "qemu"]
        for vm in listed:
            if vm.type == "qemu" and vm.vmid not in live and vm.node not in reached:
                guests.append(replace(vm, status="unknown"))
        guests += live.values()  # a VM gone from its node's list no longer exists there
        unreachable = {vm.node for vm in listed if vm.type == "qemu"} - reached
        return cls(sorted(guests, key=lambda g: g.vmid), unreachable)

    def by_name(self, name: str) -> list[VmInfo]:
        """The QEMU VMs (templates included) with this name; names are not unique."""
        return [vm for vm in self.vms if vm.name == name]

    def by_vmid(self, vmid: int) -> VmInfo | None:
        """The guest (VM or container: they share the id space) with this id."""
        return next((g for g in self.guests if g.vmid == int(vmid)), None)

    def unnamed_out_of_reach(self) -> list[VmInfo]:
        """VMs on nodes that did not answer, with no name broadcast: any name possible."""
        return [vm for vm in self.vms if vm.node in self.unreachable and not vm.name]

    def templates(self) -> list[VmInfo]:
        """The QEMU templates."""
        return [vm for vm in self.vms if vm.template]

    def managed(self, tag: str = "aihost") -> list[VmInfo]:
        """The QEMU VMs carrying the tag (aihost's own)."""
        return [vm for vm in self.vms if tag in vm.tags]


def node_vms(client: Api, node: str) -> list[VmInfo] | None:
    """The VMs of one node, live (GET /nodes/{node}/qemu); None when the node is offline
    (595/596)."""
    try:
        rows = client.get(f"/nodes/{node}/qemu") or []
    except ApiError as exc:
        if exc.status in (595, 596):
            return None
        raise
    return [
        VmInfo.from_vmstatus(r, node)
        for r in rows
        if isinstance(r, dict) and r.get("vmid") is not None
    ]


def next_vmid(client: Api, *, avoid: set[int] | None = None) -> int:
    """A free VM id from /cluster/nextid (which may answer a string).

    avoid: ids this process already handed out but not yet created (parallel creates);
    when nextid returns one of them, the next higher id is checked with ?vmid=.
    """
    value = client.get("/cluster/nextid")
    try:
        vmid = int(value)
    except (TypeError, ValueError):
        raise ApiError(f"/cluster/nextid answered {value!r}, not a VM id") from None
    taken = avoid or set()
    while vmid in taken:
        vmid += 1
        try:
            client.get("/cluster/nextid", vmid=vmid)
        except ApiError as exc:
            if exc.status == 400:  # "VM {vmid} already exists"
                continue
            raise
    return vmid
