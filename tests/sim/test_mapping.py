"""/cluster/mapping/pci as pve-manager PVE/API2/Cluster/Mapping/PCI.pm serves it: `map`
required on every update (SectionConfig::check_config with create set), one digest for
the whole mapping/pci.cfg, merge semantics of update, lock_pci_config's error prefix."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from proxmoxer.core import ResourceException

from provision.sim.app import SimApp

GPU_4090 = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"
GPU_3060 = "node=pve1,path=0000:02:00,id=10de:2503,subsystem-id=1462:397d,iommugroup=13"
CHANGED = "detected modified configuration - file changed by other user? Try again."


def _fail(call, *args, **kw) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call(*args, **kw)
    return caught.value


def _two(api):
    api.cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090], description="big")
    api.cluster.mapping.pci.post(id="rtx3060", map=[GPU_3060])
    return api.cluster.mapping.pci("rtx4090"), api.cluster.mapping.pci("rtx3060")


def test_update_without_map_dies_in_check_config_with_http_500(sim):
    api = sim.api()
    big, _ = _two(api)
    digest = big.get()["digest"]
    err = _fail(big.put, description="leased", digest=digest)
    assert err.status_code == 500
    assert err.content == "update hardware mapping failed: missing value for required option 'map'"
    assert big.get()["description"] == "big"
    err = _fail(big.put, delete="description", digest=digest)
    assert err.content.endswith("missing value for required option 'map'")
    big.put(description="leased", digest=digest, map=[GPU_4090])
    assert big.get()["description"] == "leased"


def test_one_digest_for_the_whole_file_any_change_invalidates_every_digest(sim):
    api = sim.api()
    big, small = _two(api)
    before = big.get()["digest"]
    assert small.get()["digest"] == before
    assert {row["digest"] for row in api.cluster.mapping.pci.get()} == {before}
    small.put(description="someone else", digest=before, map=[GPU_3060])
    after = big.get()["digest"]
    assert after != before
    err = _fail(big.put, description="mine", digest=before, map=[GPU_4090])
    assert err.status_code == 500
    assert err.content == f"update hardware mapping failed: {CHANGED}"
    big.put(description="mine", digest=after, map=[GPU_4090])
    api.cluster.mapping.pci.post(id="other", map=[GPU_3060])  # create changes the file too
    assert _fail(big.put, digest=after, map=[GPU_4090]).content.endswith(CHANGED)


def test_digest_is_the_files_sha1_so_a_write_that_changes_nothing_keeps_it(sim):
    api = sim.api()
    big, _ = _two(api)
    digest = big.get()["digest"]
    big.put(description="big", digest=digest, map=[GPU_4090])
    assert big.get()["digest"] == digest


def test_create_and_delete_take_no_digest_but_change_it(sim):
    api = sim.api()
    big, _ = _two(api)
    digest = big.get()["digest"]
    api.cluster.mapping.pci("rtx3060").delete()
    assert big.get()["digest"] != digest


def test_update_replaces_map_and_keeps_every_key_it_is_not_given(sim):
    api = sim.api()
    api.cluster.mapping.pci.post(
        id="gpu", map=[GPU_4090], description="d", mdev=0, **{"live-migration-capable": 1}
    )
    gpu = api.cluster.mapping.pci("gpu")
    gpu.put(map=[GPU_4090, GPU_3060])
    got = gpu.get()
    assert got["map"] == [GPU_4090, GPU_3060]
    assert (got["description"], got["mdev"], got["live-migration-capable"]) == ("d", 0, 1)
    assert got["type"] == "pci" and "id" not in got
    gpu.put(map=[GPU_3060], delete="description,live-migration-capable")
    got = gpu.get()
    assert got["map"] == [GPU_3060] and "description" not in got
    assert "live-migration-capable" not in got and got["mdev"] == 0
    gpu.put(map=[GPU_3060], description="")  # an empty string writes no line
    assert "description" not in gpu.get()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"delete": "map"}, "unable to delete required option 'map'"),
        ({"delete": "id"}, "no such option 'id'"),
        (
            {"delete": "description", "description": "x"},
            "cannot set and delete property 'description' at the same time!",
        ),
        ({"description": "two\nlines"}, "property contains a line feed"),
    ],
)
def test_update_refusals_come_from_section_config_inside_the_lock(sim, params, message):
    api = sim.api()
    big, _ = _two(api)
    err = _fail(big.put, map=[GPU_4090], **params)
    assert err.status_code == 500
    assert err.content == f"update hardware mapping failed: {message}"
    assert big.get()["description"] == "big"


def test_update_checks_the_digest_before_the_id(sim):
    api = sim.api()
    big, _ = _two(api)
    stale = big.get()["digest"]
    api.cluster.mapping.pci("rtx3060").delete()
    missing = api.cluster.mapping.pci("nope")
    assert _fail(missing.put, digest=stale, map=[GPU_4090]).content.endswith(CHANGED)
    assert _fail(missing.put, map=[GPU_4090]).content == (
        "update hardware mapping failed: pci ID 'nope' does not exist"
    )


def test_create_refusals(sim):
    api = sim.api()
    _two(api)
    err = _fail(api.cluster.mapping.pci.post, id="rtx4090", map=[GPU_4090])
    assert (err.status_code, err.content) == (
        500,
        "create hardware mapping failed: pci ID 'rtx4090' already defined",
    )
    err = _fail(api.cluster.mapping.pci.post, id="new", map=[GPU_4090], description="a\nb")
    assert (err.status_code, err.content) == (500, "property contains a line feed")
    sim.allow_violations = True  # the next requests break the schema on purpose
    err = _fail(api.cluster.mapping.pci.post, id="new")
    assert err.status_code == 400 and "map" in err.errors
    err = _fail(api.cluster.mapping.pci.post, id="new", map=["node=pve1,path=0000:01:00"])
    assert err.status_code == 400
    assert err.errors == {
        "map[0]": "invalid format - format error\n"
        "map[0].id: property is missing and it is not optional\n"
    }
    assert sorted(r["id"] for r in api.cluster.mapping.pci.get()) == ["rtx3060", "rtx4090"]


def test_get_and_index_shapes_and_visibility(sim):
    api = sim.api()
    _two(api)
    err = _fail(api.cluster.mapping.pci("nope").get)
    assert (err.status_code, err.content) == (500, "mapping 'nope' not found")
    rows = api.cluster.mapping.pci.get()
    assert sorted((r["id"], r["type"], r["map"]) for r in rows) == [
        ("rtx3060", "pci", [GPU_3060]),
        ("rtx4090", "pci", [GPU_4090]),
    ]
    assert len(sim.api("aihost@pve!readonly").cluster.mapping.pci.get()) == 2
    assert sim.api("aihost@pve!vm100").cluster.mapping.pci.get() == []
    err = _fail(sim.api("aihost@pve!vm100").cluster.mapping.pci("rtx4090").get)
    assert err.status_code == 403


def test_delete_of_a_missing_id_is_no_error_and_needs_modify_on_the_root(sim):
    api = sim.api()
    _two(api)
    assert api.cluster.mapping.pci("nope").delete() is None
    err = _fail(sim.api("aihost@pve!nomapping").cluster.mapping.pci("rtx4090").delete)
    assert (err.status_code, err.content) == (
        403,
        "Permission check failed (/mapping/pci, Mapping.Modify)",
    )
    assert len(api.cluster.mapping.pci.get()) == 2


def test_check_node_messages_follow_the_index_handler(sim):
    api = sim.api()
    api.cluster.mapping.pci.post(id="elsewhere", map=[GPU_4090.replace("pve1", "pve9")])
    api.cluster.mapping.pci.post(id="mdev", map=[GPU_3060], mdev=1)
    rows = {r["id"]: r["checks"] for r in api.cluster.mapping.pci.get(**{"check-node": "pve1"})}
    assert rows["elsewhere"] == [{"severity": "warning", "message": "No mapping for node pve1."}]
    assert rows["mdev"] == [
        {
            "severity": "error",
            "message": "Invalid configuration: 'mdev' does not match for 'mdev' (0 != 1)",
        }
    ]


def test_an_mdev_flag_the_hardware_lacks_fails_the_start(sim):
    api = sim.api()
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=100, name="vm100", full=1)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    api.cluster.mapping.pci.post(id="gpu", map=[GPU_3060], mdev=1)
    vm = api.nodes("pve1").qemu(100)
    vm.config.put(machine="q35", hostpci0="mapping=gpu")
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == (
        "PCI device mapping invalid (hardware probably changed): "
        "'mdev' does not match for 'gpu' (0 != 1)"
    )


def _call(app: SimApp, token: str, method: str, path: str, body: str) -> tuple[int, dict]:
    reply = app.handle(
        method,
        f"/api2/json{path}",
        {
            "authorization": f"PVEAPIToken={token}",
            "content-type": "application/x-www-form-urlencoded",
        },
        body.encode(),
    )
    return reply.status, reply.payload


def test_without_the_schema_validator_the_handler_refuses_the_same(tmp_path):
    """`api: sim` and `sim serve` run without apidoc.json: the handler's own checks (and
    the declarations: "g" is no pve-configid, which needs two characters)."""
    app = SimApp(tmp_path, durations={}, auth_delay=0.0)
    token = f"root@pam!aihost={app.secrets['root@pam!aihost']}"
    entry = "map=" + quote(GPU_3060, safe="")  # AnyEvent.pm decode_urlencoded splits on '='
    path = "/cluster/mapping/pci"
    assert _call(app, token, "POST", path, "id=gpu")[1]["errors"] == {
        "map": "property is missing and it is not optional"
    }
    status, payload = _call(app, token, "POST", path, "id=gpu&mdev=true&map=x")
    assert status == 400 and "map[0]" in payload["errors"]
    assert _call(app, token, "POST", path, f"id=gpu&{entry}") == (200, {"data": None})
    status, payload = _call(app, token, "PUT", f"{path}/gpu", f"mdev=true&{entry}")
    assert (status, payload["errors"]) == (
        400,
        {"mdev": "type check ('boolean') failed - got 'true'"},
    )
    status, payload = _call(app, token, "PUT", f"{path}/gpu", "description=x")
    assert (status, payload["message"]) == (
        500,
        "update hardware mapping failed: missing value for required option 'map'\n",
    )


def test_an_id_with_a_final_newline_breaks_the_file_as_section_config_does(sim):
    """pve-common JSONSchema.pm pve_verify_configid (`m/^$CONFIGID_RE$/`) accepts
    "rtx4090\\n"; pve-guest-common Mapping/PCI.pm format_section_header writes "ID\\n", so
    the section ends at the empty line. Read back (SectionConfig parse_config), "rtx4090"
    lacks `map`, check_config skips it and `$ids->{rtx4090}` is undef: the index leaves
    it out, `get` says not found, and SectionConfig write_config dies "unknown section
    type ''" on every write (delete does not remove an undef entry) until the id is
    created anew (create only refuses a defined entry)."""
    api = sim.api()
    big, small = _two(api)
    api.cluster.mapping.pci.post(id="rtx4090\n", map=[GPU_4090], description="new")
    assert [m["id"] for m in api.cluster.mapping.pci.get()] == ["rtx3060"]
    assert _fail(big.get).content == "mapping 'rtx4090' not found"
    broken = "unknown section type ''"
    err = _fail(small.put, map=[GPU_3060], description="x")
    assert (err.status_code, err.content) == (500, f"update hardware mapping failed: {broken}")
    assert _fail(big.delete).content == f"delete pci mapping failed: {broken}"
    err = _fail(api.cluster.mapping.pci.post, id="a4000", map=[GPU_4090])
    assert err.content == f"create hardware mapping failed: {broken}"
    vm = api.nodes("pve1").qemu(9000)
    vm.config.put(hostpci0="mapping=rtx4090,pcie=1", machine="q35", template=0)
    failed = sim.wait(api, vm.status.start.post())["exitstatus"]
    assert failed == "PCI device mapping not found for 'rtx4090'"
    api.cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090])
    assert sorted(m["id"] for m in api.cluster.mapping.pci.get()) == ["rtx3060", "rtx4090"]
    small.put(map=[GPU_3060], description="x")
    assert small.get()["description"] == "x"
