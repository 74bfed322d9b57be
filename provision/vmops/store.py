"""The node's shared model store: read its directory mapping for the plan, and make it.

PVE 8.4 added directory mappings and `virtiofsN`; on an older node the store is left out
(the VM keeps its models on its own disk) and the plan says so. The mapping write follows
pve-manager `PVE/API2/Cluster/Mapping/Dir.pm`: `create` checks the path on the node that
answers the API ("Path X does not exist"); `update` needs `map` and the file's digest,
which every directory mapping's write changes, so a lost write is re-read and retried.
"""

from __future__ import annotations

from typing import Any

from provision.errors import ApiError, InputError
from provision.gpu.register import DIGEST_MISMATCH
from provision.gpu.retry import OTHER, Retrier, exhausted
from provision.inventory.model import ModelStore
from provision.plan.desired import DesiredVm
from provision.plan.store import VIRTIOFS, StoreFacts, dirid, map_entry, wanted_map
from provision.pve.api import Api
from provision.pve.dirmap import VIRTIOFS_SINCE, DirMapping, pve_version
from provision.pve.session import Session

DESCRIPTION = "aihost: the nodes' shared model store (virtiofs)"


def read_store(session: Session, desired: DesiredVm) -> tuple[StoreFacts | None, str | None]:
    """(the store's mapping as read, or None without a store; a note when the node's
    Proxmox VE has no directory mappings). Reads GET /version and the mapping."""
    store = session.inv.model_store_of(desired.name)
    if store is None:
        return None, None
    client = session.client(desired.host_name)
    version = pve_version(client)
    if version < VIRTIOFS_SINCE:
        return None, (
            f"model store: Proxmox VE {version[0]}.{version[1]} has no directory mappings "
            "(8.4 and later): the VM keeps its models on its own disk"
        )
    found = DirMapping(client, store.mapping).find()
    entries = None if found is None else [str(e) for e in found.get("map") or []]
    return StoreFacts(store, desired.node, entries), None


def store_mapping(session: Session, desired: DesiredVm, config: dict[str, Any]) -> str | None:
    """The directory mapping of the model store of the VM's host, for a VM that does not
    use it: the host's `model_store:`, else (taken off the host) the mapping aihost made
    that the VM's config still passes (a virtiofsN naming a mapping whose description is
    DESCRIPTION); None when there is none, or no read says so (one GET per virtiofsN key,
    made only when the config has such keys)."""
    store = session.inv.hosts[desired.host_name].model_store
    if store is not None:
        return store.mapping
    client = session.client(desired.host_name)
    for key in sorted(config):
        if not VIRTIOFS.fullmatch(key):
            continue
        name = dirid(str(config[key]))
        try:
            found = DirMapping(client, name).find()
        except ApiError:
            continue  # not readable by this token: the key is left as it is
        if found is not None and found.get("description") == DESCRIPTION:
            return name
    return None


def ensure_store(client: Api, store: ModelStore, node: str, retry: Retrier | None = None) -> str:
    """Create the mapping, or set node's entry in it (others kept): "created", "updated"
    or "unchanged". A write that lost to another writer is re-read and tried again."""
    retry = retry or Retrier()
    mapping = DirMapping(client, store.mapping)
    for attempt in range(retry.attempts):
        if attempt:
            retry.pause(attempt - 1)
        action = _once(mapping, store, node)
        if action:
            return action
    raise exhausted(
        f"directory mapping '{store.mapping}'", "mapping/directory.cfg", OTHER, retry.attempts
    )


def _once(mapping: DirMapping, store: ModelStore, node: str) -> str | None:
    """One read-modify-write: the action taken, or None when it lost to another writer."""
    current = mapping.find()
    try:
        if current is None:
            mapping.create([map_entry(node, store.path)], DESCRIPTION)
            return "created"
        entries = wanted_map([str(e) for e in current.get("map") or []], node, store.path)
        if entries is None:
            return "unchanged"
        mapping.write(entries, current.get("digest"))
        return "updated"
    except ApiError as exc:
        if "already defined" in exc.message or DIGEST_MISMATCH.search(exc.message):
            return None
        if "does not exist" in exc.message and store.path in exc.message:
            raise InputError(
                f"model store: {store.path} does not exist on node {node}, so Proxmox "
                f"refuses the directory mapping '{store.mapping}'",
                hint=f"create it there: mkdir -p {store.path}",
            ) from exc
        raise
