"""Directory mappings (/cluster/mapping/dir), the host directories virtiofs shares.

The handlers follow pve-manager `PVE/API2/Cluster/Mapping/Dir.pm` (commit 14a22df3):
`index`, `get`, `create`, `update` and `delete`; the file they read and write is
mapping/directory.cfg (provision.sim.mapping_cfg, kind "dir": one digest for the whole
file), the checks are pve-guest-common `PVE/Mapping/Dir.pm` (provision.sim.dirmap).
"""

from __future__ import annotations

from typing import Any

from provision.sim import mapping_cfg as cfg
from provision.sim.context import Ctx, Handler, Route
from provision.sim.dirmap import assert_valid, assert_valid_map_list, node_mapping
from provision.sim.http import ApiFailure, fail, param_fail
from provision.sim.virtiofs import SINCE, release
from provision.sim.vmconfig import split_delete

KIND = "dir"
_SEE = ("Mapping.Modify", "Mapping.Use", "Mapping.Audit")


def since_84(method: str, handler: Handler) -> Handler:
    """Before PVE 8.4 (the fixture's `version:`) pve-manager has no Mapping/Dir.pm: the
    route does not exist ("Method 'M /path' not implemented", HTTP 501)."""

    def served(ctx: Ctx) -> Any:
        if release(ctx.world) < SINCE:
            name = ctx.params.get("id")
            path = "/cluster/mapping/dir" + (f"/{name}" if name else "")
            raise ApiFailure(501, f"Method '{method} {path}' not implemented")
        return handler(ctx)

    served.__doc__ = handler.__doc__
    return served


def _entry(ctx: Ctx, entry: dict[str, Any]) -> dict[str, Any]:
    """dclone of the section plus the file's digest (parse_config keeps `type`)."""
    return {"type": KIND, **entry, "map": list(entry["map"]), "digest": cfg.digest(ctx.world, KIND)}


def _checks(ctx: Ctx, entry: dict[str, Any], node: str) -> list[dict[str, str]]:
    """`index` with check-node: a warning without an entry for the node, an error for each
    entry `assert_valid` refuses on that node."""
    mine = node_mapping(entry, node) or []
    checks = []
    if not mine:
        checks.append({"severity": "warning", "message": f"No mapping for node {node}."})
    for map_entry in mine:
        try:
            assert_valid(ctx.world, node, map_entry.get("path", ""))
        except ApiFailure as problem:
            message = f"Invalid configuration: {problem.message}\n"
            checks.append({"severity": "error", "message": message})
    return checks


def dir_list(ctx: Ctx) -> Any:
    """GET /cluster/mapping/dir (`index`): entries the caller may see (Mapping.Modify, .Use
    or .Audit on /mapping/dir/ID) with `id` and the file's digest; check-node (proxied to
    that node) adds `checks`."""
    check_node = ctx.params.get("check-node")
    if check_node:
        ctx.node(str(check_node))
    out = []
    for name, entry in cfg.section(ctx.world, KIND).items():
        if not ctx.identity.privileges(f"/mapping/dir/{name}") & set(_SEE):
            continue
        if entry is None:  # `next if !$cfg->{ids}->{$id}`
            continue
        row = {**_entry(ctx, entry), "id": name}
        if check_node:
            row["checks"] = _checks(ctx, entry, str(check_node))
        out.append(row)
    return out


def dir_create(ctx: Ctx) -> Any:
    """POST /cluster/mapping/dir (`create`): check_config($id, $param, 1, 1) and
    assert_valid_map_list outside the lock (its errors bare), then "dir ID 'X' already
    defined" inside lock_dir_config ("create directory mapping failed: …"). No digest."""
    name = str(ctx.params["id"])
    given = {k: v for k, v in ctx.params.items() if k != "id"}
    if "map" not in given:  # createSchema(1): the required option is a required parameter
        raise param_fail({"map": "property is missing and it is not optional"})
    settings = cfg.check_config(given, create=True, kind=KIND)
    assert_valid_map_list(ctx.world, settings["map"])
    with cfg.locked("create directory mapping failed"):
        if cfg.section(ctx.world, KIND).get(name) is not None:
            raise fail(f"dir ID '{name}' already defined")
        entry: dict[str, Any] = {}
        cfg.store(entry, settings, KIND)
        cfg.write(ctx.world, name, entry, KIND)
    return None


def dir_get(ctx: Ctx) -> Any:
    """GET /cluster/mapping/dir/{id} (`get`): the section plus the file's digest;
    "mapping 'X' not found" (HTTP 500) when missing."""
    name = str(ctx.params["id"])
    entry = cfg.section(ctx.world, KIND).get(name)
    if entry is None:
        raise fail(f"mapping '{name}' not found")
    return _entry(ctx, entry)


def dir_update(ctx: Ctx) -> Any:
    """PUT /cluster/mapping/dir/{id} (`update`), all inside lock_dir_config ("update
    directory mapping failed: …"): the file's digest when given (assert_if_modified),
    "dir ID 'X' does not exist", check_config($id, $param, 1, 1) (so `map` is required
    every time), assert_valid_map_list, delete_from_config, then the given keys replace
    the stored ones and the others are kept."""
    name = str(ctx.params["id"])
    given_digest = ctx.params.get("digest")
    delete = split_delete(ctx.params.get("delete"))
    given = {k: v for k, v in ctx.params.items() if k not in ("id", "digest", "delete")}
    with cfg.locked("update directory mapping failed"):
        if given_digest and given_digest != cfg.digest(ctx.world, KIND):
            raise fail("detected modified configuration - file changed by other user? Try again.")
        entry = cfg.section(ctx.world, KIND).get(name)
        if entry is None:
            raise fail(f"dir ID '{name}' does not exist")
        settings = cfg.check_config(given, create=True, kind=KIND)
        assert_valid_map_list(ctx.world, settings["map"])
        cfg.delete_from_config(entry, settings, delete, KIND)
        cfg.store(entry, settings, KIND)
        cfg.write(ctx.world, name, entry, KIND)
    return None


def dir_delete(ctx: Ctx) -> Any:
    """DELETE /cluster/mapping/dir/{id} (`delete`): removes the section if there is one (a
    missing id is no error), then writes the file ("delete dir mapping failed: …");
    needs Mapping.Modify on /mapping/dir. No digest."""
    with cfg.locked("delete dir mapping failed"):
        name = str(ctx.params["id"])
        if cfg.section(ctx.world, KIND).get(name) is not None:
            del cfg.section(ctx.world, KIND)[name]
        cfg.check_writable(ctx.world, KIND)
    return None


ROUTES: list[Route] = [
    (method, path, since_84(method, handler))
    for method, path, handler in [
        ("GET", "/cluster/mapping/dir", dir_list),
        ("POST", "/cluster/mapping/dir", dir_create),
        ("GET", "/cluster/mapping/dir/{id}", dir_get),
        ("PUT", "/cluster/mapping/dir/{id}", dir_update),
        ("DELETE", "/cluster/mapping/dir/{id}", dir_delete),
    ]
]
