"""Deliver a VM's cloud-init user-data and meta-data to the node as snippets over SFTP."""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provision.errors import ApiError, InputError
from provision.plan.desired import snippet_names
from provision.pve.api import Api
from provision.pve.connect import sim_ssh_target
from provision.pve.node import Node
from provision.ssh.transport import SshSession, SshTarget

if TYPE_CHECKING:
    from provision.inventory.model import Inventory
    from provision.pve.session import Background
    from provision.ssh.transport import SshSession, SshTarget

# takes the background read started for a key (provision.pve.session.Session.take_early)
EarlyReads = Callable[[Hashable], "Background | None"]
# the node's storage list as the command read it once (provision.pve.session.node_storages)
Storages = Callable[[], list[dict[str, Any]]]


@dataclass(frozen=True)
class SnippetFile:
    """One file to have on the node: where, what, and whether it is already there."""

    volume: str
    remote_path: str
    content: bytes
    present: bool

    @property
    def sha256(self) -> str:
        """Hex digest of the content."""
        return hashlib.sha256(self.content).hexdigest()


def snippet_path(ssh: SshSession, volid: str) -> str:
    """The node path of a snippet volume, resolved by Proxmox itself: `pvesm path VOLID`
    (pve-storage PVE/CLI/pvesm.pm `path` -> PVE::Storage::path) honours the storage's
    path and content-dirs on every file storage (dir, NFS, CIFS, CephFS). It needs no
    API privilege, unlike GET /storage/{id} (Datastore.Allocate)."""
    result = ssh.run(f"pvesm path {shlex.quote(volid)}")
    lines = result.stdout.strip().splitlines()
    if result.ok and len(lines) == 1 and lines[0].startswith("/"):
        return lines[0]
    said = (result.stderr or result.stdout).strip().splitlines()
    storage = volid.partition(":")[0]
    raise InputError(
        f"cannot find where {volid} lives on the node: `pvesm path` "
        + (f"says: {said[0]}" if said else f"exited {result.exit_status}"),
        hint=f"storage.snippets ('{storage}') must be a file storage of the node that allows "
        "snippets (`pvesm status --content snippets` lists them), reached over ssh as root",
    )


def snippet_paths(ssh: SshSession, storage: str, names: list[str]) -> list[str]:
    """The node paths of several snippets of one storage, with one `pvesm path` (a Perl
    start of ~0.3 s on a real node): pve-storage PVE/Storage/Plugin.pm `filesystem_path`
    puts every volume of type snippets in one directory (`get_subdir`, then "/$name"),
    so the others are siblings of the first."""
    if not names:
        return []
    first = snippet_path(ssh, f"{storage}:snippets/{names[0]}")
    folder = posixpath.dirname(first)
    return [first, *(posixpath.join(folder, name) for name in names[1:])]


def storage_allows(
    client: Api, node: str, storage: str, content: str, storages: Storages | None = None
) -> bool:
    """True when the node lists storage (visible to the caller) with content among its types.

    storages: the node's whole list as the command read it, else this storage is asked
    for alone; an unknown storage is a 400 "No such storage." then (pve-storage Status.pm
    index): False too, so the pre-flight names it."""
    try:
        listed = (
            storages() if storages is not None else Node(client, node).storages(storage=storage)
        )
    except ApiError as exc:
        if exc.status == 400 and "storage" in (exc.errors or {}):
            return False
        raise
    return any(
        str(entry.get("storage")) == storage and content in str(entry.get("content", "")).split(",")
        for entry in listed
    )


def ssh_target(inv: Inventory, host_name: str) -> SshTarget:
    """Where to SFTP the snippets: the inventory's ssh settings, or the simulator's endpoint."""
    host = inv.hosts[host_name]
    if host.api == "sim":
        return sim_ssh_target(host)
    if host.ssh is None:
        raise InputError(
            f"hosts.{host_name} has no ssh: settings, and cloud-init snippets reach the node only "
            "over SSH",
            hint=f"add ssh: {{user: root}} to hosts.{host_name}, or cloudinit_delivery: iso",
        )

    return SshTarget.from_host(host)


def read_key(
    inv: Inventory, vm_name: str, host_name: str
) -> tuple[SshTarget, str, tuple[str, ...]]:
    """What the SSH half of plan_snippets reads: where (InputError when no SSH target can be
    named), the snippet storage, and the VM's snippet file names."""
    names = tuple(snippet_names(vm_name).values())
    return ssh_target(inv, host_name), inv.hosts[host_name].storage.snippets, names


def read_current(
    target: SshTarget, storage: str, names: tuple[str, ...]
) -> list[tuple[str, bytes | None]]:
    """Over one SSH connection: each snippet's node path (`pvesm path`) and its content on
    the node (None when absent)."""
    with SshSession(target) as ssh:
        paths = snippet_paths(ssh, storage, list(names))
        return [(path, ssh.read_file(path)) for path in paths]


def plan_snippets(
    inv: Inventory,
    vm_name: str,
    host_name: str,
    client: Api,
    user_data: bytes,
    meta_data: bytes,
    early: EarlyReads | None = None,
    storages: Storages | None = None,
) -> list[SnippetFile]:
    """Which snippet files the VM needs and whether each is already on the node (by hash).

    When the storage does not allow `snippets` content, nothing is read over SSH: every file
    is planned as missing (with no node path), and the pre-flight reports the storage.
    early takes the same SSH reads when they were started in the background (their errors
    are raised here, as if they had run now); storages the node's storage list.
    """
    storage = inv.hosts[host_name].storage.snippets
    names = snippet_names(vm_name)
    wanted = {"user": user_data, "meta": meta_data}
    if not storage_allows(client, inv.node_of(host_name), storage, "snippets", storages):
        return [
            SnippetFile(f"{storage}:snippets/{name}", "", wanted[kind], present=False)
            for kind, name in names.items()
        ]
    key = read_key(inv, vm_name, host_name)
    started = early(("snippets", *key)) if early is not None else None
    current = started.result() if started is not None else read_current(*key)
    return [
        SnippetFile(f"{storage}:snippets/{name}", path, wanted[kind], present=now == wanted[kind])
        for (kind, name), (path, now) in zip(names.items(), current, strict=True)
    ]


def upload_snippets(inv: Inventory, host_name: str, files: list[SnippetFile]) -> int:
    """Write the files that are not there yet (atomically); return how many were written."""
    todo = [f for f in files if not f.present]
    if not todo:
        return 0
    if any(not f.remote_path for f in todo):
        storage = todo[0].volume.split(":", 1)[0]
        raise InputError(
            f"storage '{storage}' does not allow content 'snippets'",
            hint=f"enable it with `pvesm set {storage} --content ...,snippets`",
        )
    written = 0
    with SshSession(ssh_target(inv, host_name)) as ssh:
        for item in todo:
            written += int(ssh.upload_if_changed(item.remote_path, item.content))
    return written


def remove_snippets(inv: Inventory, host_name: str, vm_name: str) -> int:
    """Remove the VM's snippet files from the node; return how many existed."""
    storage = inv.hosts[host_name].storage.snippets
    with SshSession(ssh_target(inv, host_name)) as ssh:
        paths = snippet_paths(ssh, storage, list(snippet_names(vm_name).values()))
        return sum(int(ssh.remove(path)) for path in paths)
