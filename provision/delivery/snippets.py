"""Deliver a VM's cloud-init user-data and meta-data to the node as snippets over SFTP."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provision.errors import ApiError, InputError
from provision.plan.desired import snippet_names

if TYPE_CHECKING:
    from provision.inventory.model import Inventory
    from provision.pve.client import PveClient
    from provision.ssh.transport import SshTarget

DIR_STORAGE_ROOTS = {"local": "/var/lib/vz"}


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


def snippets_dir(inv: Inventory, host_name: str, client: PveClient) -> str:
    """The node directory holding the snippets storage's files."""
    host = inv.hosts[host_name]
    storage = host.storage.snippets
    root = DIR_STORAGE_ROOTS.get(storage)
    if root is None:
        try:
            root = client.get(f"/storage/{storage}").get("path")
        except ApiError as exc:
            raise InputError(
                f"cannot find the path of storage '{storage}' ({exc.message})",
                hint="use a directory storage such as 'local' for storage.snippets",
            ) from None
        if not root:
            raise InputError(f"storage '{storage}' has no directory path; snippets need one")
    return f"{root.rstrip('/')}/snippets"


def storage_allows(client: PveClient, node: str, storage: str, content: str) -> bool:
    """True when the node lists storage (visible to the caller) with content among its types.

    An unknown storage is a 400 "No such storage." (pve-storage Status.pm index): False too,
    so the pre-flight names it."""
    try:
        listed = client.get(f"/nodes/{node}/storage", storage=storage)
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
        from provision.pve.connect import sim_ssh_target

        return sim_ssh_target(host)
    if host.ssh is None:
        raise InputError(
            f"hosts.{host_name} has no ssh: settings, and cloud-init snippets reach the node only "
            "over SSH",
            hint=f"add ssh: {{user: root}} to hosts.{host_name}, or cloudinit_delivery: iso",
        )
    from provision.ssh.transport import SshTarget

    return SshTarget.from_host(host)


def plan_snippets(
    inv: Inventory,
    vm_name: str,
    host_name: str,
    client: PveClient,
    user_data: bytes,
    meta_data: bytes,
) -> list[SnippetFile]:
    """Which snippet files the VM needs and whether each is already on the node (by hash).

    When the storage does not allow `snippets` content, nothing is read over SSH: every file
    is planned as missing (with no node path), and the pre-flight reports the storage.
    """
    from provision.ssh.transport import SshSession

    storage = inv.hosts[host_name].storage.snippets
    names = snippet_names(vm_name)
    wanted = {"user": user_data, "meta": meta_data}
    if not storage_allows(client, inv.node_of(host_name), storage, "snippets"):
        return [
            SnippetFile(f"{storage}:snippets/{name}", "", wanted[kind], present=False)
            for kind, name in names.items()
        ]
    directory = snippets_dir(inv, host_name, client)
    files = []
    with SshSession(ssh_target(inv, host_name)) as ssh:
        for kind, name in names.items():
            path = f"{directory}/{name}"
            current = ssh.read_file(path)
            content = wanted[kind]
            files.append(
                SnippetFile(f"{storage}:snippets/{name}", path, content, present=current == content)
            )
    return files


def upload_snippets(inv: Inventory, host_name: str, files: list[SnippetFile]) -> int:
    """Write the files that are not there yet (atomically); return how many were written."""
    from provision.ssh.transport import SshSession

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


def remove_snippets(inv: Inventory, host_name: str, client: PveClient, vm_name: str) -> int:
    """Remove the VM's snippet files from the node; return how many existed."""
    from provision.ssh.transport import SshSession

    directory = snippets_dir(inv, host_name, client)
    with SshSession(ssh_target(inv, host_name)) as ssh:
        return sum(
            int(ssh.remove(f"{directory}/{name}")) for name in snippet_names(vm_name).values()
        )
