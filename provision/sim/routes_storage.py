"""Storage endpoints (list, status, content, upload, delete) and task status/log."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from provision.sim import storage as st
from provision.sim.context import Ctx, Route
from provision.sim.fixture import CONTENT_DIRS, storage_root
from provision.sim.http import fail, param_fail
from provision.sim.state import write_atomic
from provision.sim.tasks import parse_upid, task_list, task_log, task_status

UPLOAD_CONTENT = ("iso", "vztmpl", "import")
# pve-storage PVE/Storage.pm: ISO_EXT_RE_0, VZTMPL_EXT_RE_1, SAFE_CHAR_CLASS_RE +
# UPLOAD_IMPORT_EXT_RE_1, as PVE/API2/Storage/Status.pm `upload` applies them.
_NAME_RULES = {
    "iso": (re.compile(r"[^/]+\.(?:iso|img)", re.I), "wrong file extension"),
    "vztmpl": (re.compile(r"[^/]+\.(?:tar|tar\.(?:gz|xz|zst|bz2))", re.I), "wrong file extension"),
    "import": (
        re.compile(r"[a-zA-Z0-9\-.+=_]+\.(?:ova|qcow2|raw|vmdk)"),
        "invalid filename or wrong extension",
    ),
}


def normalize_content_filename(filename: str) -> str:
    """pve-storage PVE/Storage.pm normalize_content_filename: the base name (after the
    last / or \\), every character outside [a-zA-Z0-9_.-] replaced by '_'."""
    base = re.sub(r"^.*[/\\]", "", filename.rstrip("\n"), flags=re.S)
    return re.sub(r"[^a-zA-Z0-9_.-]", "_", base)


def storage_list(ctx: Ctx) -> Any:
    """GET /nodes/{node}/storage: pve-storage PVE/API2/Storage/Status.pm index with
    PVE/Storage.pm storage_info: `content=a,b` keeps storages with ANY of the types, an
    unknown `storage=` is a 400 "No such storage.", entries the caller may not audit
    (Datastore.Audit or Datastore.AllocateSpace) are left out."""
    node = ctx.node()
    wanted = ctx.params.get("content")
    if ctx.params.get("storage") and ctx.params["storage"] not in ctx.world["storages"]:
        raise param_fail({"storage": "No such storage."})
    out = []
    for sid, spec in sorted(ctx.world["storages"].items()):
        if spec.get("nodes") and node not in spec["nodes"]:
            continue
        held = ctx.identity.privileges(f"/storage/{sid}")
        if not held & {"Datastore.Audit", "Datastore.AllocateSpace"}:
            continue
        if wanted and not any(st.supports(spec, c) for c in re.split(r"[;,\s]+", str(wanted))):
            continue
        if ctx.params.get("storage") and ctx.params["storage"] != sid:
            continue
        out.append(st.storage_status(ctx.state_dir, ctx.world, sid))
    return out


def storage_config(ctx: Ctx) -> Any:
    """GET /storage/{storage}: the storage's storage.cfg section (pve-storage
    PVE/API2/Storage/Config.pm `read`, after its Datastore.Allocate check; the shape of
    `$api_storage_config`: the section's keys, `storage`, and the whole file's `digest`)."""
    sid = str(ctx.params["storage"])
    spec = ctx.world["storages"].get(sid)
    if spec is None:
        raise fail(f"storage '{sid}' does not exist")
    out: dict[str, Any] = {"storage": sid, "type": spec["type"], "content": spec["content"]}
    if spec.get("path"):
        out["path"] = spec["path"]
    if spec.get("shared"):
        out["shared"] = 1
    if spec.get("nodes"):
        out["nodes"] = ",".join(spec["nodes"])
    text = json.dumps(ctx.world["storages"], sort_keys=True)
    out["digest"] = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
    return out


def storage_status(ctx: Ctx) -> Any:
    """GET /nodes/{node}/storage/{storage}/status."""
    st.storage_spec(ctx.world, str(ctx.params["storage"]), ctx.node())
    return st.storage_status(ctx.state_dir, ctx.world, str(ctx.params["storage"]))


def content(ctx: Ctx) -> Any:
    """GET /nodes/{node}/storage/{storage}/content."""
    sid = str(ctx.params["storage"])
    st.storage_spec(ctx.world, sid, ctx.node())
    return st.content_list(ctx.state_dir, ctx.world, sid, ctx.params.get("content"))


def _volid(sid: str, volume: str) -> str:
    return volume if ":" in volume else f"{sid}:{volume}"


def content_delete(ctx: Ctx) -> Any:
    """DELETE /nodes/{node}/storage/{storage}/content/{volume}: pve-storage
    PVE/API2/Storage/Content.pm `delete`. Datastore.Allocate on the storage, then an
    `imgdel` worker (id "VMID@STORAGE" for a VM's volume) running PVE/Storage.pm
    vdisk_free: nothing checks whether a VM config still names the volume; a base volume
    a linked clone uses is refused; a missing file is only a warning line
    (Plugin.pm free_image)."""
    sid = str(ctx.params["storage"])
    st.storage_spec(ctx.world, sid, ctx.node())
    volid = _volid(sid, str(ctx.params["volume"]))
    ctx.require(f"/storage/{sid}", ["Datastore.Allocate"])
    name = volid.partition(":")[2]
    owner = ctx.world["volumes"].get(sid, {}).get(name, {}).get("vmid")
    log, error = [], None
    if name in ctx.world["volumes"].get(sid, {}):
        if any(f"{volid}/" in v for vm in ctx.world["vms"].values() for v in vm["config"].values()):
            error = f"base volume '{name}' is still in use by linked clones"
        else:
            st.free_volume(ctx.world, volid)
    else:
        path = st.file_path(ctx.state_dir, ctx.world, volid)
        if path is None:
            raise fail(f"unable to parse directory volume name '{name}'")
        if path.is_file():
            path.unlink()
        else:
            log.append(f"disk image '{path}' does not exist")
    if error is None:
        log.append(f"Removed volume '{volid}'")
    task_id = f"{owner}@{sid}" if owner is not None else sid
    return ctx.task("imgdel", task_id, {}, duration=0.0, log=log, error=error)


def upload(ctx: Ctx) -> Any:
    """POST /nodes/{node}/storage/{storage}/upload, in the order of pve-storage
    PVE/API2/Storage/Status.pm `upload`: storage enabled on the node, a path-based type,
    the normalised file name's extension (HTTP 400), the storage's content types, then an
    `imgcopy` worker."""
    sid = str(ctx.params["storage"])
    spec = st.storage_spec(ctx.world, sid, ctx.node())
    if not spec.get("path"):
        raise fail(f"can't upload to storage type '{spec['type']}'")
    kind = str(ctx.params.get("content", ""))
    if kind not in UPLOAD_CONTENT:
        raise param_fail(  # the schema's enum check (PVE::JSONSchema) comes first
            {
                "content": f"value '{kind}' does not have a value in the enumeration "
                f"'{', '.join(UPLOAD_CONTENT)}'"
            }
        )
    if "filename" not in ctx.files:
        raise param_fail({"filename": "property is missing and it is not optional"})
    filename, data = ctx.files["filename"]
    name = normalize_content_filename(str(ctx.params.get("filename") or filename))
    pattern, problem = _NAME_RULES[kind]
    if not pattern.fullmatch(name):
        raise param_fail({"filename": problem})
    if not st.supports(spec, kind):
        raise fail(f"storage '{sid}' does not support '{kind}' content")
    target = storage_root(ctx.state_dir, sid) / CONTENT_DIRS[kind] / name
    write_atomic(target, data)
    tmp = f"/var/tmp/pveupload-{len(data):x}"
    dest = f"{spec['path']}/{CONTENT_DIRS[kind]}/{name}"
    log = [
        f"starting file import from: {tmp}",
        f"target node: {ctx.node()}",
        f"target file: {dest}",
        f"file size is: {len(data)}",
        f"command: cp -- {tmp} {dest}",
        "finished file import successfully",
    ]
    return ctx.task("imgcopy", "", {}, log=log, duration=0.0)


def _task(ctx: Ctx, *, must_exist: bool) -> tuple[str, dict[str, Any] | None]:
    """pve-manager PVE/API2/Tasks.pm read_task_status / read_task_log: an unparsable UPID
    is a 400 ("unable to parse worker upid"); the status of a task whose log is not on
    this node is a 400 "no such task"; a caller who is not the task's owner (a user owns
    its tokens' tasks too: $check_task_user) needs Sys.Audit on /nodes/{node}."""
    upid = str(ctx.params["upid"])
    info = parse_upid(upid)
    if info is None:
        raise param_fail({"upid": "unable to parse worker upid"})
    task = ctx.world["tasks"].get(upid)
    if task is not None and task["node"] != ctx.node():
        task = None
    if task is None and must_exist:
        raise param_fail({"upid": "no such task"})
    owner = info["user"]
    caller = ctx.identity.auth_id
    if not (caller == owner or ("!" in owner and caller == owner.partition("!")[0])):
        ctx.require(f"/nodes/{ctx.node()}", ["Sys.Audit"])
    return upid, task


def get_task_status(ctx: Ctx) -> Any:
    """GET /nodes/{node}/tasks/{upid}/status."""
    upid, task = _task(ctx, must_exist=True)
    assert task is not None
    return task_status(upid, task)


def get_task_log(ctx: Ctx) -> Any:
    """GET /nodes/{node}/tasks/{upid}/log: a missing log file is not an error but one line
    (pve-common PVE/Tools.pm dump_logfile: "unable to open file - …")."""
    _upid, task = _task(ctx, must_exist=False)
    if task is None:
        return [{"n": 1, "t": "unable to open file - No such file or directory"}]
    return task_log(task, int(ctx.params.get("start", 0)), int(ctx.params.get("limit", 50)))


def list_tasks(ctx: Ctx) -> Any:
    """GET /nodes/{node}/tasks: the tasks the caller may see (its own; every task with
    Sys.Audit on /nodes/{node}), as pve-manager PVE/API2/Tasks.pm `node_tasks` lists them."""
    node = ctx.node()
    auditor = "Sys.Audit" in ctx.identity.privileges(f"/nodes/{node}")
    return task_list(ctx.world, node, ctx.identity.auth_id, auditor, ctx.params)


ROUTES: list[Route] = [
    ("GET", "/storage/{storage}", storage_config),
    ("GET", "/nodes/{node}/storage", storage_list),
    ("GET", "/nodes/{node}/storage/{storage}/status", storage_status),
    ("GET", "/nodes/{node}/storage/{storage}/content", content),
    ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}", content_delete),
    ("POST", "/nodes/{node}/storage/{storage}/upload", upload),
    ("GET", "/nodes/{node}/tasks", list_tasks),
    ("GET", "/nodes/{node}/tasks/{upid}/status", get_task_status),
    ("GET", "/nodes/{node}/tasks/{upid}/log", get_task_log),
]
