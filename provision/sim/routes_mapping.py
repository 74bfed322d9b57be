"""Cluster resource mappings for PCI devices (/cluster/mapping/pci) and access info."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from provision.sim.auth import ALL_PRIVS
from provision.sim.context import Ctx, Route
from provision.sim.http import fail, param_fail
from provision.sim.pci import check_map_entry, parse_prop
from provision.sim.vmconfig import split_delete

_SEE = ("Mapping.Modify", "Mapping.Use", "Mapping.Audit")


def _digest(entry: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(entry, sort_keys=True).encode()).hexdigest()


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)] if value else []


def _row(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": name,
        "type": "pci",
        "map": list(entry["map"]),
        "digest": _digest(entry),
    }
    for key in ("description", "mdev", "live-migration-capable"):
        if entry.get(key) not in (None, ""):
            row[key] = entry[key]
    return row


def mapping_list(ctx: Ctx) -> Any:
    """GET /cluster/mapping/pci (only entries the caller may see; check-node adds checks)."""
    out = []
    check_node = ctx.params.get("check-node")
    if check_node:
        ctx.node(str(check_node))
    for name, entry in sorted(ctx.world["mappings"]["pci"].items()):
        if not ctx.identity.privileges(f"/mapping/pci/{name}") & set(_SEE):
            continue
        row = _row(name, entry)
        if check_node:
            checks = []
            entries = [parse_prop(e) for e in entry["map"]]
            mine = [e for e in entries if e.get("node") == check_node]
            if not mine:
                checks.append(
                    {"severity": "warning", "message": f"No mapping for node '{check_node}'."}
                )
            for map_entry in mine:
                problem = check_map_entry(ctx.world, str(check_node), map_entry, name)
                if problem:
                    checks.append({"severity": "error", "message": problem})
            row["checks"] = checks
        out.append(row)
    return out


def _check_map(ctx: Ctx, entries: list[str]) -> None:
    for text in entries:
        entry = parse_prop(text)
        missing = [k for k in ("node", "path", "id") if k not in entry]
        if missing:
            raise param_fail({"map": f"missing property - '{missing[0]}'"})
        if entry["node"] not in ctx.world["nodes"]:
            raise param_fail({"map": f"invalid node '{entry['node']}'"})


def mapping_create(ctx: Ctx) -> Any:
    """POST /cluster/mapping/pci."""
    name = str(ctx.params["id"])
    if name in ctx.world["mappings"]["pci"]:
        raise fail(f"pci ID '{name}' already defined")
    entries = _as_list(ctx.params.get("map"))
    _check_map(ctx, entries)
    entry: dict[str, Any] = {"map": entries}
    for key in ("description", "mdev", "live-migration-capable"):
        if key in ctx.params:
            entry[key] = ctx.params[key]
    ctx.world["mappings"]["pci"][name] = entry
    return None


def _mapping(ctx: Ctx) -> tuple[str, dict[str, Any]]:
    name = str(ctx.params["id"])
    entry = ctx.world["mappings"]["pci"].get(name)
    if entry is None:
        raise fail(f"PCI mapping '{name}' not found")
    return name, entry


def mapping_get(ctx: Ctx) -> Any:
    """GET /cluster/mapping/pci/{id}."""
    name, entry = _mapping(ctx)
    return _row(name, entry)


def mapping_update(ctx: Ctx) -> Any:
    """PUT /cluster/mapping/pci/{id}: compare-and-set with digest."""
    _name, entry = _mapping(ctx)
    given = ctx.params.get("digest")
    if given and given != _digest(entry):
        raise fail("detected modified configuration - file changed by other user? Try again.")
    for key in split_delete(ctx.params.get("delete")):
        entry.pop(key, None)
    if "map" in ctx.params:
        entries = _as_list(ctx.params["map"])
        _check_map(ctx, entries)
        entry["map"] = entries
    for key in ("description", "mdev", "live-migration-capable"):
        if key in ctx.params:
            entry[key] = ctx.params[key]
    return None


def mapping_delete(ctx: Ctx) -> Any:
    """DELETE /cluster/mapping/pci/{id}."""
    name, _entry = _mapping(ctx)
    del ctx.world["mappings"]["pci"][name]
    return None


def permissions(ctx: Ctx) -> Any:
    """GET /access/permissions: {path: {privilege: 1}} for the caller (or path)."""
    userid = ctx.params.get("userid")
    if userid and userid != ctx.identity.auth_id:
        ctx.require("/access", ["Sys.Audit"])
    paths = [str(ctx.params["path"])] if ctx.params.get("path") else ctx.identity.acl_paths()
    out = {}
    for path in paths:
        held = ctx.identity.privileges(path)
        out[path] = {p: 1 for p in ALL_PRIVS if p in held}
    return out


ROUTES: list[Route] = [
    ("GET", "/cluster/mapping/pci", mapping_list),
    ("POST", "/cluster/mapping/pci", mapping_create),
    ("GET", "/cluster/mapping/pci/{id}", mapping_get),
    ("PUT", "/cluster/mapping/pci/{id}", mapping_update),
    ("DELETE", "/cluster/mapping/pci/{id}", mapping_delete),
    ("GET", "/access/permissions", permissions),
]
