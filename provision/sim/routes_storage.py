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
from provision.sim.tasks import task_list, task_log, task_status

UPLOAD_CONTENT = ("iso", "vztmpl", "import")
_EXTENSIONS = {
    "iso": (".iso", ".img"),
    "vztmpl": (".tar.gz", ".tar.xz", ".tar.zst", ".tgz"),
    "import": (".ova", ".ovf", ".qcow2", ".raw", ".vmdk", ".img"),
}


def storage_list(ctx: Ctx) -> Any:
    """GET /nodes/{node}/storage (entries the caller may audit; content= filters)."""
    node = ctx.node()
    wanted = ctx.params.get("content")
    out = []
    for sid, spec in sorted(ctx.world["storages"].items()):
        if spec.get("nodes") and node not in spec["nodes"]:
            continue
        held = ctx.identity.privileges(f"/storage/{sid}")
        if not held & {"Datastore.Audit", "Datastore.AllocateSpace"}:
            continue
        if wanted and not all(st.supports(spec, c) for c in str(wanted).split(",")):
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
    """DELETE /nodes/{node}/storage/{storage}/content/{volume} (a task, as in PVE)."""
    sid = str(ctx.params["storage"])
    st.storage_spec(ctx.world, sid, ctx.node())
    ctx.require(f"/storage/{sid}", ["Datastore.Allocate"])
    volid = _volid(sid, str(ctx.params["volume"]))
    if not st.volume_exists(ctx.state_dir, ctx.world, volid):
        raise fail(f"volume '{volid}' does not exist")
    name = volid.partition(":")[2]
    if name in ctx.world["volumes"].get(sid, {}):
        for vmid, vm in ctx.world["vms"].items():
            if any(v.split(",")[0] == volid for v in vm["config"].values()):
                raise fail(f"unable to delete volume '{volid}' - referenced by VM {vmid}")
        st.free_volume(ctx.world, volid)
    else:
        path = st.file_path(ctx.state_dir, ctx.world, volid)
        if path is not None:
            path.unlink()
    return ctx.task("imgdel", "", {}, duration=0.0)


def upload(ctx: Ctx) -> Any:
    """POST /nodes/{node}/storage/{storage}/upload: multipart, content iso|vztmpl|import."""
    sid = str(ctx.params["storage"])
    spec = st.storage_spec(ctx.world, sid, ctx.node())
    kind = str(ctx.params.get("content", ""))
    if kind not in UPLOAD_CONTENT:
        raise param_fail(
            {
                "content": f"value '{kind}' does not have a value in the enumeration "
                f"'{', '.join(UPLOAD_CONTENT)}'"
            }
        )
    if "filename" not in ctx.files:
        raise param_fail({"filename": "property is missing and it is not optional"})
    if not st.supports(spec, kind) or not spec.get("path"):
        raise fail(f"storage '{sid}' does not support content-type '{kind}'")
    filename, data = ctx.files["filename"]
    name = re.sub(r"[^\w\-.+]", "_", filename.rsplit("/", 1)[-1])
    if not name.lower().endswith(_EXTENSIONS[kind]):
        raise fail(f"wrong file extension '{name}'")
    target = storage_root(ctx.state_dir, sid) / CONTENT_DIRS[kind] / name
    write_atomic(target, data)
    log = [
        f"starting file import from: /var/tmp/pveupload-{len(data):x}",
        f"target node: {ctx.node()}",
        f"target file: {spec['path']}/{CONTENT_DIRS[kind]}/{name}",  # noqa: E501
        f"file size is: {len(data)}",
        "finished file import successfully",
    ]
    return ctx.task("imgcopy", "", {}, log=log, duration=0.0)


def _task(ctx: Ctx) -> tuple[str, dict[str, Any]]:
    upid = str(ctx.params["upid"])
    task = ctx.world["tasks"].get(upid)
    if task is None or task["node"] != ctx.node():
        raise fail(
            f"unable to open file '/var/log/pve/tasks/{upid[-2:]}/{upid}' - "
            "No such file or directory"
        )
    if task["user"] != ctx.identity.auth_id:
        ctx.require(f"/nodes/{task['node']}", ["Sys.Audit"])
    return upid, task


def get_task_status(ctx: Ctx) -> Any:
    """GET /nodes/{node}/tasks/{upid}/status."""
    upid, task = _task(ctx)
    return task_status(upid, task)


def get_task_log(ctx: Ctx) -> Any:
    """GET /nodes/{node}/tasks/{upid}/log."""
    _upid, task = _task(ctx)
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
