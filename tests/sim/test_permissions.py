"""Privileges: the simulator's table matches the real schema's `permissions` entries for
every endpoint it serves, and tokens of lower privilege get Proxmox's 403."""

from __future__ import annotations

import json

import pytest
from aihost_testing import SHARED_DIR
from proxmoxer.core import ResourceException

from provision.sim.app import ROUTES
from provision.sim.perms import PERMISSIONS

SCHEMA = SHARED_DIR / "pve" / "apidoc.json"


def _schema_permissions() -> dict[tuple[str, str], object]:
    if not SCHEMA.exists():
        pytest.skip(f"{SCHEMA} is absent: cannot cross-check the permission table")
    found: dict[tuple[str, str], object] = {}
    stack = list(json.loads(SCHEMA.read_text()))
    while stack:
        node = stack.pop()
        for method, info in (node.get("info") or {}).items():
            found[(method, node["path"])] = info.get("permissions")
        stack.extend(node.get("children") or [])
    return found


def test_permission_table_matches_the_schema_for_every_served_endpoint():
    schema = _schema_permissions()
    served = {(method, template) for method, template, _p, _h in ROUTES}
    served.add(("POST", "/access/ticket"))
    assert served == set(PERMISSIONS), "every route has exactly one table entry"
    for key, mine in PERMISSIONS.items():
        real = schema[key]
        assert isinstance(real, dict), key
        if "check" in real:
            assert mine.get("check") == real["check"], key
        else:
            assert mine == {"user": real["user"]}, key


def _fail(call, *args, **kw) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call(*args, **kw)
    return caught.value


def test_token_without_power_management_gets_403(sim):
    api = sim.api()
    sim.wait(api, api.nodes("pve1").qemu(9000).clone.post(newid=100, name="p", full=1))
    limited = sim.api("aihost@pve!nopower")
    err = _fail(limited.nodes("pve1").qemu(100).status.start.post)
    assert err.status_code == 403
    assert err.content == "Permission check failed (/vms/100, VM.PowerMgmt)"
    limited.nodes("pve1").qemu(100).config.put(cores=4)  # other rights still work


def test_token_without_allocate_template_cannot_upload(sim, tmp_path):
    limited = sim.api("aihost@pve!notemplate")
    (tmp_path / "x.iso").write_bytes(b"x")
    with (tmp_path / "x.iso").open("rb") as handle:
        err = _fail(
            limited.nodes("pve1").storage("local").upload.post, content="iso", filename=handle
        )
    assert err.status_code == 403
    assert err.content == "Permission check failed (/storage/local, Datastore.AllocateTemplate)"


def test_readonly_token_sees_but_cannot_write(sim):
    ro = sim.api("aihost@pve!readonly")
    assert len(ro.cluster.resources.get(type="vm")) == 2
    err = _fail(ro.nodes("pve1").qemu(9000).config.put, cores=4)
    assert err.status_code == 403 and err.content.startswith("Permission check failed (/vms/9000, ")  # noqa: E501
    perms = ro.access.permissions.get()
    assert perms["/"]["VM.Audit"] == 1 and "VM.PowerMgmt" not in perms["/"]


def test_token_limited_to_one_vm_lists_only_that_vm(sim):
    api = sim.api()
    sim.wait(api, api.nodes("pve1").qemu(9000).clone.post(newid=100, name="mine", full=1))
    scoped = sim.api("aihost@pve!vm100")
    assert [vm["vmid"] for vm in scoped.cluster.resources.get(type="vm")] == [100]
    assert scoped.access.permissions.get(path="/vms/100")["/vms/100"]["VM.PowerMgmt"] == 1
    err = _fail(scoped.nodes("pve1").qemu(9000).config.get)
    assert err.content == "Permission check failed (/vms/9000, VM.Audit)"


def test_admin_token_has_every_privilege(sim):
    perms = sim.api().access.permissions.get(path="/vms/100")
    assert {"VM.PowerMgmt", "Mapping.Use", "VM.GuestAgent.Unrestricted"} <= set(perms["/vms/100"])


def test_mapping_list_shows_only_mappings_the_caller_may_see(sim):
    entry = "node=pve1,path=0000:02:00,id=10de:2503,subsystem-id=1462:397d,iommugroup=13"
    sim.api().cluster.mapping.pci.post(id="rtx3060", map=[entry])
    assert [m["id"] for m in sim.api("aihost@pve!readonly").cluster.mapping.pci.get()] == [
        "rtx3060"
    ]
    assert sim.api("aihost@pve!vm100").cluster.mapping.pci.get() == []
    err = _fail(sim.api("aihost@pve!vm100").cluster.mapping.pci("rtx3060").get)
    assert err.status_code == 403 and err.content == "Permission check failed"
