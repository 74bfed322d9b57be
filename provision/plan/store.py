"""The node's shared model store in a VM's plan: the directory mapping it needs and the
`virtiofsN` key that passes it to the VM (no network needed).

The mapping's `map` holds one `node=NODE,path=PATH` entry per node (pve-guest-common
PVE/Mapping/Dir.pm `assert_valid_map_list`: a node at most once); other nodes' entries are
kept. The VM gets the mapping on the virtiofs key that already names it, else on the first
free one of virtiofs0..9 (qemu-server Virtiofs.pm $MAX_VIRTIOFS); the guest mounts it by
its tag, the mapping id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from provision.inventory.model import ModelStore
from provision.plan.desired import DesiredVm
from provision.plan.model import Action

MAX_VIRTIOFS = 10
VIRTIOFS = re.compile(r"virtiofs(\d)")  # the VM config keys of directory shares


@dataclass(frozen=True)
class StoreFacts:
    """What was read about the store's mapping: its map entries, or None when missing."""

    store: ModelStore
    node: str
    entries: list[str] | None


def map_entry(node: str, path: str) -> str:
    """The mapping's entry for node."""
    return f"node={node},path={path}"


def node_of_entry(entry: str) -> str | None:
    """The node= of a map entry."""
    found = re.search(r"(?:^|,)node=([^,]+)", entry)
    return found.group(1) if found else None


def wanted_map(entries: list[str], node: str, path: str) -> list[str] | None:
    """The map with node's entry pointing at path (others kept); None when it already does."""
    mine = map_entry(node, path)
    others = [e for e in entries if node_of_entry(e) != node]
    if [e for e in entries if node_of_entry(e) == node] == [mine]:
        return None
    return [*others, mine]


def dirid(value: str) -> str:
    """The mapping id of a virtiofs value (`dirid`, the default key)."""
    for part in str(value).split(","):
        key, eq, rest = part.partition("=")
        if not eq:
            return key
        if key == "dirid":
            return rest
    return ""


def virtiofs_key(config: dict[str, Any], mapping: str) -> str | None:
    """The key that names mapping already, else the first free virtiofsN (None: all used)."""
    used = {k: v for k, v in config.items() if VIRTIOFS.fullmatch(k)}
    for key in sorted(used):
        if dirid(str(used[key])) == mapping:
            return key
    return next((f"virtiofs{i}" for i in range(MAX_VIRTIOFS) if f"virtiofs{i}" not in used), None)


def with_store(desired: DesiredVm, config: dict[str, Any], key: str, mapping: str) -> DesiredVm:
    """desired with the store passed on key; a value there naming the mapping already is
    kept as it is (cache=, direct-io=… set by hand stay)."""
    have = config.get(key)
    value = str(have) if have is not None and dirid(str(have)) == mapping else mapping
    return replace(desired, config={**desired.config, key: value})


def store_keys(config: dict[str, Any], mapping: str) -> list[str]:
    """The virtiofsN keys that pass mapping to the VM (a user's other shares are not)."""
    return [k for k in sorted(config) if VIRTIOFS.fullmatch(k) and dirid(str(config[k])) == mapping]


def without_store(
    desired: DesiredVm, config: dict[str, Any], mapping: str | None, provisioned: bool
) -> tuple[DesiredVm, str | None]:
    """desired for a VM that does not use its host's store (opted out, no GPU, or the host
    has none any more; mapping: the store's directory mapping, None when there is none):
    the virtiofsN keys naming that mapping are deleted, and only those. While its guest
    still runs the user-data it was provisioned with (provisioned: a user-data change is
    pending), its runtime keeps its models in the store: the keys stay until the
    re-provision, and the note says so. Returns (desired, note or None)."""
    keys = store_keys(config, mapping) if mapping is not None else []
    if not keys:
        return desired, None
    if provisioned:
        return desired, (
            f"model store: {', '.join(keys)} stays while the guest keeps its models in the "
            f"store (it runs the user-data it was provisioned with): `aihost vm up "
            f"{desired.name} --reprovision` removes it and the guest downloads them to its disk"
        )
    return replace(desired, drop=(*desired.drop, *keys)), None


def store_actions(facts: StoreFacts) -> list[Action]:
    """The mapping write the store needs first: create it, or add this node's entry."""
    store, entry = facts.store, map_entry(facts.node, facts.store.path)
    if facts.entries is None:
        return [Action("create-store", f"create directory mapping '{store.mapping}' ({entry})")]
    if wanted_map(facts.entries, facts.node, store.path) is None:
        return []
    return [Action("update-store", f"set directory mapping '{store.mapping}': {entry}")]
