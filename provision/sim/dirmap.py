"""Directory mappings as pve-guest-common `src/PVE/Mapping/Dir.pm` checks them, against the
simulated nodes' host directories.

A node's file system is modelled as the directories (and a few files) that exist on it:
the fixture's `dirs:` per node plus the directories every Proxmox VE node has (see
host_dirs). `-e`/`-d` of a path are answered from that list; a directory implies its
parents. The simulator answers the API as the fixture's first node
(`PVE::INotify::nodename()` of the node the client talks to: local_node).
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from provision.sim.http import fail
from provision.sim.pci import parse_prop
from provision.sim.state import World

# Directories of a stock PVE node (Debian's top-level hierarchy plus Proxmox's own).
STOCK_DIRS = ("/etc/pve", "/mnt", "/opt", "/srv", "/tmp", "/var/lib/vz", "/home", "/root")
STOCK_FILES = ("/etc/hostname", "/etc/pve/storage.cfg")
PATH_MESSAGE = (
    "Value does not look like a valid absolute path. These symbols are currently not "
    "allowed in path: ;,=()"
)


def local_node(world: World) -> str:
    """The node answering the API: the fixture's first node."""
    return next(iter(world["nodes"]))


def host_dirs(world: World, node: str) -> set[str]:
    """Every directory on node: the stock ones, the fixture's `dirs`, storage paths, and
    each one's parents."""
    spec = world["nodes"].get(node) or {}
    listed = [*STOCK_DIRS, *(spec.get("dirs") or [])]
    listed += [s["path"] for s in world["storages"].values() if s.get("path")]
    found = {"/"}
    for path in listed:
        path = posixpath.normpath(path)
        while path not in found:
            found.add(path)
            path = posixpath.dirname(path)
    return found


def verify_path(path: str) -> None:
    """Dir.pm `pve_verify_path`: `m|^/[^;,=\\(\\)]+|` (anchored at the start only)."""
    if re.match(r"/[^;,=()]+", path) is None:
        raise fail(PATH_MESSAGE)


def assert_valid(world: World, node: str, path: str) -> None:
    """Dir.pm `assert_valid`, run on node: the path must exist there and be a directory."""
    verify_path(path)
    normal = posixpath.normpath(path)
    if normal in host_dirs(world, node):
        return
    if normal in STOCK_FILES:
        raise fail(f"Path {path} exists, but is not a directory")
    raise fail(f"Path {path} does not exist")


def assert_valid_map_list(world: World, entries: list[str]) -> None:
    """Dir.pm `assert_valid_map_list`: the entry for the local node is checked in place;
    a node named twice is "Node 'X' is specified N times."."""
    here = local_node(world)
    count: dict[str, int] = {}
    for text in entries:
        entry = parse_prop(text)
        if entry.get("node") == here:
            assert_valid(world, here, entry.get("path", ""))
        count[entry.get("node", "")] = count.get(entry.get("node", ""), 0) + 1
    for node, times in count.items():
        if times > 1:
            raise fail(f"Node '{node}' is specified {times} times.")


def node_mapping(entry: dict[str, Any] | None, node: str) -> list[dict[str, str]] | None:
    """Dir.pm `get_node_mapping`: the map entries for node (None when no such mapping)."""
    if entry is None:
        return None
    parsed = (parse_prop(str(text)) for text in entry.get("map") or [])
    return [e for e in parsed if e.get("node") == node]


def find_on_node(world: World, dirid: str, node: str) -> dict[str, str]:
    """Dir.pm `find_on_current_node`, run on node (the VM's, at its start)."""
    entries = node_mapping(world["mappings"].get("dir", {}).get(dirid), node)
    if entries is None:
        raise fail(f"Directory ID {dirid} does not exist.")
    if len(entries) > 1:
        raise fail(f"More than than one directory mapping for node {node}.")
    if not entries:
        raise fail(f"No directory mapping for node {node}.")
    return entries[0]
