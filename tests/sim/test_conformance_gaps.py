"""Rows of docs/sim-conformance.md that no other test pinned: the node status shape,
reading another user's task, and a linked clone of volumes without the clone feature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aihost_testing import SHARED_DIR
from proxmoxer import ResourceException

FIXTURES = Path(__file__).resolve().parents[2] / "provision" / "sim" / "fixtures"


def _returns(path: str, method: str) -> dict[str, Any]:
    """The `returns` schema of one route in ../shared/pve/apidoc.json."""
    apidoc = SHARED_DIR / "pve" / "apidoc.json"
    if not apidoc.exists():
        pytest.skip(f"{apidoc} is missing")
    stack = list(json.loads(apidoc.read_text(encoding="utf-8")))
    while stack:
        node = stack.pop()
        if node.get("path") == path:
            returns: dict[str, Any] = node["info"][method]["returns"]
            return returns
        stack.extend(node.get("children") or [])
    raise AssertionError(f"{method} {path} is not in apidoc.json")


def _missing(schema: dict[str, Any], value: Any, where: str = "") -> list[str]:
    """Required properties of schema (recursively, objects only) that value lacks."""
    out = []
    for key, sub in (schema.get("properties") or {}).items():
        if key not in value:
            if not sub.get("optional"):
                out.append(f"{where}{key}")
        elif sub.get("type") == "object":
            out += _missing(sub, value[key], f"{where}{key}.")
    return out


def test_node_status_has_every_key_nodes_status_sets(sim: Any) -> None:
    """pve-manager PVE/API2/Nodes.pm `status`: uptime, loadavg, kversion and
    current-kernel (uname), boot-info, cpuinfo, cpu, memory, swap, pveversion, rootfs;
    the figures agree with GET /nodes."""
    api = sim.api()
    status = api.nodes("pve1").status.get()
    assert _missing(_returns("/nodes/{node}/status", "GET"), status) == []
    row = next(n for n in api.nodes.get() if n["node"] == "pve1")
    assert status["cpuinfo"]["cpus"] == row["maxcpu"]
    assert status["memory"]["total"] == row["maxmem"]
    kernel = status["current-kernel"]
    assert status["kversion"] == f"{kernel['sysname']} {kernel['release']} {kernel['version']}"
    assert status["pveversion"].startswith("pve-manager/")


def test_another_users_task_needs_sys_audit_on_the_node(make_sim: Any, tmp_path: Any) -> None:
    """pve-manager PVE/API2/Tasks.pm read_task_status / read_task_log: a caller that is
    not the task's user (or that user's token: $check_task_user) needs Sys.Audit on
    /nodes/{node}."""
    fixture = yaml.safe_load((FIXTURES / "default.yaml").read_text(encoding="utf-8"))
    fixture["access"]["tokens"]["aihost@pve!own"] = {
        "privsep": 1,
        "acl": [{"path": "/vms/100", "privs": "all"}],
    }
    path = tmp_path / "fixture.yaml"
    path.write_text(yaml.safe_dump(fixture), encoding="utf-8")
    sim = make_sim(path)
    api, own = sim.api(), sim.api("aihost@pve!own")
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=100, name="t", full=1)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    denied = "Permission check failed (/nodes/pve1, Sys.Audit)"
    for read in (own.nodes("pve1").tasks(upid).status.get, own.nodes("pve1").tasks(upid).log.get):
        with pytest.raises(ResourceException) as caught:
            read()
        assert (caught.value.status_code, caught.value.content) == (403, denied)
    mine = own.nodes("pve1").qemu(100).status.start.post()
    assert sim.wait(own, mine)["exitstatus"] == "OK"
    assert own.nodes("pve1").tasks(mine).log.get()


def test_a_linked_clone_needs_base_volumes(sim: Any) -> None:
    """qemu-server API2/Qemu.pm clone_vm $load_and_check: per drive (sorted),
    volume_has_feature('clone') or "Linked clone feature is not supported for 'VOLID'
    (KEY)"; pve-storage Plugin.pm/LvmThinPlugin.pm volume_has_feature: clone only from a
    base volume. The cloud-init drive is copied, so it needs no clone feature."""
    api = sim.api()
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=100, name="vm100", full=1)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    scsi0 = api.nodes("pve1").qemu(100).config.get()["scsi0"].split(",")[0]
    with pytest.raises(ResourceException) as caught:
        api.nodes("pve1").qemu(100).clone.post(newid=101, name="linked", full=0)
    assert (caught.value.status_code, caught.value.content) == (
        500,
        f"Linked clone feature is not supported for '{scsi0}' (scsi0)",
    )
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=102, name="linked", full=0)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
