"""Cluster resource mappings for PCI devices (/cluster/mapping/pci) and access info.

The handlers follow pve-manager `PVE/API2/Cluster/Mapping/PCI.pm` (commit 14a22df3):
`index`, `get`, `create`, `update` and `delete`; the file they read and write is
provision.sim.mapping_cfg (one digest for the whole mapping/pci.cfg).
"""

from __future__ import annotations

from typing import Any

from provision.sim import mapping_cfg as cfg
from provision.sim.auth import ALL_PRIVS
from provision.sim.context import Ctx, Route
from provision.sim.http import fail, param_fail
from provision.sim.pci import check_map_entry, parse_prop
from provision.sim.vmconfig import split_delete

_SEE = ("Mapping.Modify", "Mapping.Use", "Mapping.Audit")
_MAP_KEYS = ("node", "path", "id")  # the map format's required keys (PVE::Mapping::PCI $map_fmt)


def _entry(world: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """A parsed section plus the file's digest (`type` is kept by parse_config)."""
    data: dict[str, Any] = {"type": "pci", **entry, "map": list(entry["map"])}
    data["digest"] = cfg.digest(world)
    return data


def _checks(ctx: Ctx, name: str, entry: dict[str, Any], node: str) -> list[dict[str, str]]:
    """`index` with check-node: a warning without entries for the node, an error per entry
    `PVE::Mapping::PCI::assert_valid` refuses."""
    mine = [e for e in (parse_prop(x) for x in entry["map"]) if e.get("node") == node]
    checks = []
    if not mine:
        checks.append({"severity": "warning", "message": f"No mapping for node {node}."})
    for map_entry in mine:
        problem = check_map_entry(ctx.world, node, map_entry, name, entry)
        if problem:
            checks.append({"severity": "error", "message": f"Invalid configuration: {problem}"})
    return checks


def mapping_list(ctx: Ctx) -> Any:
    """GET /cluster/mapping/pci (`index`): entries the caller may see (Mapping.Modify, .Use
    or .Audit on /mapping/pci/ID), each with `id` and the file's `digest`; check-node
    (proxied to that node) adds `checks`."""
    check_node = ctx.params.get("check-node")
    if check_node:
        ctx.node(str(check_node))
    out = []
    for name, entry in cfg.section(ctx.world).items():
        if not ctx.identity.privileges(f"/mapping/pci/{name}") & set(_SEE):
            continue
        if entry is None:  # `next if !$cfg->{ids}->{$id}` (a section parse_config skipped)
            continue
        row = {**_entry(ctx.world, entry), "id": name}
        if check_node:
            row["checks"] = _checks(ctx, name, entry, str(check_node))
        out.append(row)
    return out


def _check_map(entries: list[str]) -> None:
    """The schema's `map` item format ($map_fmt): node, path and id are required
    (pve-common JSONSchema, error key `map[N]`)."""
    errors = {}
    for index, text in enumerate(entries):
        entry = parse_prop(text)
        missing = [k for k in sorted(_MAP_KEYS) if k not in entry]
        if missing:
            lines = "".join(
                f"map[{index}].{k}: property is missing and it is not optional\n" for k in missing
            )
            errors[f"map[{index}]"] = "invalid format - format error\n" + lines
    if errors:
        raise param_fail(errors)


def mapping_create(ctx: Ctx) -> Any:
    """POST /cluster/mapping/pci (`create`): parameters per createSchema(1) (`map`
    required), check_config($id, $param, 1, 1) outside the lock, then "pci ID 'X' already
    defined" inside it ("create hardware mapping failed: …"). No digest."""
    name = str(ctx.params["id"])
    given = {k: v for k, v in ctx.params.items() if k != "id"}
    if "map" not in given:  # createSchema(1) makes the required option a required parameter
        raise param_fail({"map": "property is missing and it is not optional"})
    _check_map(cfg.as_list(given["map"]))
    settings = cfg.check_config(given, create=True)
    with cfg.locked("create hardware mapping failed"):
        if cfg.section(ctx.world).get(name) is not None:  # defined($cfg->{ids}->{$id})
            raise fail(f"pci ID '{name}' already defined")
        entry: dict[str, Any] = {}
        cfg.store(entry, settings)
        cfg.write(ctx.world, name, entry)
    return None


def mapping_get(ctx: Ctx) -> Any:
    """GET /cluster/mapping/pci/{id} (`get`): the section (no `id`) plus the file's digest;
    "mapping 'X' not found" (HTTP 500) when missing."""
    name = str(ctx.params["id"])
    entry = cfg.section(ctx.world).get(name)
    if entry is None:
        raise fail(f"mapping '{name}' not found")
    return _entry(ctx.world, entry)


def mapping_update(ctx: Ctx) -> Any:
    """PUT /cluster/mapping/pci/{id} (`update`), inside lock_pci_config: the file's digest
    (when given), "pci ID 'X' does not exist", check_config($id, $param, 1, 1) so `map`
    is required every time, delete_from_config, then the given keys replace the stored
    ones and every other key is kept. Errors: HTTP 500 "update hardware mapping failed: …".
    """
    name = str(ctx.params["id"])
    given_digest = ctx.params.get("digest")
    delete = split_delete(ctx.params.get("delete"))
    given = {k: v for k, v in ctx.params.items() if k not in ("id", "digest", "delete")}
    if "map" in given:
        _check_map(cfg.as_list(given["map"]))
    with cfg.locked("update hardware mapping failed"):
        if given_digest and given_digest != cfg.digest(ctx.world):
            raise fail("detected modified configuration - file changed by other user? Try again.")
        entry = cfg.section(ctx.world).get(name)
        if entry is None:
            raise fail(f"pci ID '{name}' does not exist")
        settings = cfg.check_config(given, create=True)
        cfg.delete_from_config(entry, settings, delete)
        cfg.store(entry, settings)
        cfg.write(ctx.world, name, entry)
    return None


def mapping_delete(ctx: Ctx) -> Any:
    """DELETE /cluster/mapping/pci/{id} (`delete`): removes the section if there is one
    (`if ($cfg->{ids}->{$id})`: a missing or skipped id is no error, and is not removed),
    then writes the file; needs Mapping.Modify on /mapping/pci. No digest."""
    with cfg.locked("delete pci mapping failed"):
        name = str(ctx.params["id"])
        if cfg.section(ctx.world).get(name) is not None:
            del cfg.section(ctx.world)[name]
        cfg.check_writable(ctx.world)
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
