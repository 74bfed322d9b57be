"""The request validator (provision.sim.apischema) against Proxmox's real API schemas.

The schemas are read from ../shared/pve (default_shared_dir()); without them these tests
skip, unless AIHOST_REQUIRE_SCHEMA=1, where their absence fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest

from provision.sim.apischema import ApiSchema, default_shared_dir, load_schemas_for_tests

UPID = "UPID:pve1:0000A1B2:0012C3D4:6650F00D:qmclone:9000:aihost@pve!prov:"
CONFIG = "/nodes/pve1/qemu/101/config"
MAPPED_GPU = "mapping=rtx4090,pcie=1"
RAW_GPU = "0000:01:00,pcie=1"


def _require(path: Path) -> Path:
    """path, or skip (fail with AIHOST_REQUIRE_SCHEMA=1) when it is absent."""
    if not path.is_file():
        if os.environ.get("AIHOST_REQUIRE_SCHEMA") == "1":
            pytest.fail(f"{path} is missing and AIHOST_REQUIRE_SCHEMA=1")
        pytest.skip(f"Proxmox's API schema is not at {path} (see ../shared/pve/README.md)")
    return path


@pytest.fixture(scope="module")
def pve9() -> ApiSchema:
    """The PVE 9.1 schema."""
    return ApiSchema.load(_require(default_shared_dir() / "pve" / "apidoc.json"))


@pytest.fixture(scope="module")
def pve8() -> ApiSchema:
    """The PVE 8.4 schema."""
    return ApiSchema.load(_require(default_shared_dir() / "pve" / "apidoc-8.4.json"))


@pytest.fixture(scope="module", params=["9.1", "8.4"])
def pve(request, pve9, pve8) -> ApiSchema:
    """Each schema in turn (for rules both versions share)."""
    return pve9 if request.param == "9.1" else pve8


def _one(problems: list[str], *needles: str) -> str:
    """The single violation, checked to mention every needle."""
    assert len(problems) == 1, problems
    for needle in needles:
        assert needle in problems[0], problems
    return problems[0]


# ---- requests aihost sends are valid -----------------------------------------------------
def test_clone_create_and_config_valid(pve):
    clone = {"newid": "101", "name": "llm-box", "full": "1", "storage": "local-lvm"}
    assert pve.validate("POST", "/nodes/pve1/qemu/9000/clone", clone) == []
    create = {
        "vmid": 101,
        "name": "llm-box",
        "machine": "q35",
        "bios": "ovmf",
        "cpu": "host",
        "efidisk0": "local-lvm:1,efitype=4m,pre-enrolled-keys=0",
        "agent": "1",
        "cores": "4",
        "memory": "16384",
        "net0": "virtio,bridge=vmbr0",
        "scsihw": "virtio-scsi-pci",
        "scsi0": "local-lvm:0,import-from=local:import/noble.qcow2",
        "ide2": "local-lvm:cloudinit",
        "boot": "order=scsi0;net0",
        "tags": "aihost",
        "ostype": "l26",
    }
    assert pve.validate("POST", "/nodes/pve1/qemu", create) == []
    config = {
        "hostpci0": MAPPED_GPU,
        "hostpci1": RAW_GPU,
        "ipconfig0": "ip=dhcp",
        "ipconfig1": "ip=192.168.1.50/24,gw=192.168.1.1",
        "ciuser": "ai",
        "cicustom": "user=local:snippets/a.yaml",
        "digest": "0123456789abcdef" * 2 + "01234567",
        "delete": "net1,ide0;unused0",
        "sshkeys": quote("ssh-ed25519 AAAAC3Nz me@laptop\n", safe=""),
    }
    assert pve.validate("PUT", CONFIG, config) == []
    assert pve.validate("POST", CONFIG, config) == []


def test_python_values_as_a_json_body_would_carry_them(pve):
    params = {"newid": 101, "full": True, "name": "llm-box"}
    assert pve.validate("POST", "/nodes/pve1/qemu/9000/clone", params) == []


def test_guest_agent_task_and_storage_paths(pve):
    vm = "/nodes/pve1/qemu/101"
    assert pve.validate("POST", f"{vm}/agent/ping", {}) == []
    assert pve.validate("POST", f"{vm}/agent/exec", {"command": ["nvidia-smi", "-L"]}) == []
    assert pve.validate("GET", f"{vm}/agent/exec-status", {"pid": "42"}) == []
    assert pve.validate("GET", f"/nodes/pve1/tasks/{UPID}/status", {}) == []
    assert pve.validate("GET", f"/nodes/pve1/tasks/{quote(UPID, safe='')}/log", {}) == []
    assert pve.validate("POST", f"{vm}/status/start", {"timeout": "120"}) == []
    assert pve.validate("GET", "/cluster/resources", {"type": "vm"}) == []
    upload = {"content": "iso", "filename": "cidata-101.iso"}
    assert pve.validate("POST", "/nodes/pve1/storage/local/upload", upload) == []
    volume = "/nodes/pve1/storage/local/content/local:iso/cidata-101.iso"
    assert pve.validate("GET", volume, {}) == []
    assert pve.route(volume).path_params["volume"] == "local:iso/cidata-101.iso"
    encoded = pve.route("/api2/json/nodes/pve1/storage/local/content/local%3Aiso%2Fa.iso")
    assert encoded.path_params == {"node": "pve1", "storage": "local", "volume": "local:iso/a.iso"}


def test_mapping_and_node_notes(pve):
    entry = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"
    assert pve.validate("POST", "/cluster/mapping/pci", {"id": "rtx4090", "map": [entry]}) == []
    assert pve.validate("GET", "/cluster/mapping/pci", {"check-node": "pve1"}) == []
    put = {"digest": "ab" * 20, "description": "holder: 101"}
    assert pve.validate("PUT", "/cluster/mapping/pci/rtx4090", put) == []
    assert pve.validate("PUT", "/nodes/pve1/config", put) == []
    bad = entry.replace("id=10de:2684", "id=10de2684")
    _one(pve.validate("POST", "/cluster/mapping/pci", {"id": "rtx4090", "map": [bad]}), "map[0].id")


# ---- what a real node refuses -----------------------------------------------------------
def test_misspelt_parameter(pve):
    _one(pve.validate("PUT", CONFIG, {"memroy": "16384"}), "memroy", "not defined in schema")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("0000:01:00,pcie=yes-please", "hostpci0.pcie: type check ('boolean')"),
        ("host=zz:01", "hostpci0.host: value does not match the regex pattern"),
        ("0000:01:00,pcei=1", "hostpci0.pcei: property is not defined in schema"),
        ("0000:01:00,pcie=1,pcie=0", "duplicate key"),
        ("0000:01:00,0000:02:00", "duplicate key"),
        ("mapping=rtx4090,vendor-id=10de", "hostpci0.vendor-id"),
        ("mapping=rtx 4090", "hostpci0.mapping"),
        ("0000:01:00,pcie=", "missing key"),
    ],
)
def test_malformed_hostpci(pve, value, needle):
    _one(pve.validate("PUT", CONFIG, {"hostpci0": value}), needle)


@pytest.mark.parametrize("value", ["pcie=1", "0000:01:00,mapping=rtx4090", ""])
def test_hostpci_host_or_mapping_is_not_a_schema_rule(pve, value):
    """pve-common's validator accepts these; qemu-server refuses them later, in
    API2/Qemu.pm check_hostpci_perm (non-root: "either 'host' or 'mapping' must be set")
    and QemuServer/PCI.pm parse_hostpci at start."""
    assert pve.validate("PUT", CONFIG, {"hostpci0": value}) == []


def test_hostpci_booleans_inside_property_strings_take_words(pve):
    assert pve.validate("PUT", CONFIG, {"hostpci0": "0000:01:00.0,pcie=on,x-vga=Yes"}) == []


def test_hostpci_index_range(pve):
    assert pve.validate("PUT", CONFIG, {"hostpci15": MAPPED_GPU}) == []
    _one(pve.validate("PUT", CONFIG, {"hostpci16": MAPPED_GPU}), "hostpci16: property is not")
    _one(pve.validate("PUT", CONFIG, {"hostpci01": MAPPED_GPU}), "hostpci01")
    _one(pve.validate("PUT", CONFIG, {"scsi31": "local-lvm:8"}), "scsi31")


def test_hostpci_driver_key_only_on_9_1(pve9, pve8):
    params = {"hostpci0": "mapping=rtx4090,pcie=1,driver=vfio"}
    assert pve9.validate("PUT", CONFIG, params) == []
    _one(pve8.validate("PUT", CONFIG, params), "driver: property is not defined")
    _one(pve9.validate("PUT", CONFIG, {"hostpci0": "mapping=a1,driver=nouveau"}), "driver")


def test_missing_required(pve):
    _one(pve.validate("POST", "/nodes/pve1/qemu/9000/clone", {"name": "x"}), "newid", "missing")
    _one(pve.validate("POST", "/nodes/pve1/storage/local/upload", {"content": "iso"}), "filename")


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"bios": "uefi"}, "bios: value 'uefi' does not have a value in the enumeration"),
        ({"ostype": "linux"}, "ostype: value 'linux'"),
        ({"machine": "q36"}, "machine.type: value does not match the regex pattern"),
        ({"machine": "q35,viommu=amd"}, "machine.viommu"),
        ({"cores": "four"}, "cores: type check ('integer') failed - got 'four'"),
        ({"cores": "0"}, "cores: value must have a minimum value of 1"),
        ({"agent": "maybe"}, "agent.enabled"),
        ({"onboot": "true"}, "onboot: type check ('boolean') failed - got 'true'"),
        ({"name": "llm_box"}, "name: invalid format - value does not look like a valid DNS name"),
        ({"digest": "a" * 41}, "digest: value may only be 40 characters long"),
        (
            {"delete": "net1,bad key!"},
            "delete: invalid format - invalid configuration ID 'key!'",
        ),
        ({"tags": "ai host,ok;b@d"}, "tags"),
        ({"sshkeys": "ssh-ed25519 AAAA me@laptop"}, "sshkeys: invalid format - invalid urlencoded"),
        ({"net0": "virtio,bridge=vmbr0,macaddr=01:00:00:00:00:01"}, "net0.macaddr"),
        ({"cpu": "host,hidden=maybe"}, "cpu.hidden"),
        ({"cpu": "host,hv-vendor-id=much-too-long-id"}, "cpu.hv-vendor-id"),
        ({"boot": "order=scsi0;net 0"}, "boot.order"),
        ({"hotplug": "network,gpu"}, "hotplug"),
        ({"cicustom": "user=snippets/a.yaml"}, "cicustom.user"),
        ({"cicustom": "users=local:snippets/a.yaml"}, "cicustom.users: property is not defined"),
        ({"ipconfig0": "ip=999.1.1.1/24"}, "ipconfig0.ip: invalid format - value does not look"),
        ({"ipconfig0": "ip=10.0.0.5/33"}, "ipconfig0.ip"),
        ({"ipconfig0": "ip=10.0.0.5/24,gw=10.0.0.256"}, "ipconfig0.gw"),
        ({"ipconfig0": "gw=10.0.0.1"}, "ipconfig0.ip: missing property"),
        ({"ipconfig0": "ip6=fe80::1/129"}, "ipconfig0.ip6"),
        ({"ipconfig32": "ip=dhcp"}, "ipconfig32"),
        ({"watchdog": "modle=ib700"}, "watchdog.modle: property is not defined in schema"),
    ],
)
def test_bad_values(pve, params, needle):
    _one(pve.validate("PUT", CONFIG, params), needle)


def test_good_values_that_look_odd(pve):
    ok = {
        "net0": "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1",
        "ipconfig0": "ip6=auto",
        "ipconfig1": "ip=manual",
        "ipconfig2": "ip6=2001:db8::5/64,gw6=2001:db8::1",
        "cpu": "x86-64-v2-AES,flags=+aes;-pcid",
        "agent": "true",
        "watchdog": "i6300esb,action=reset",
        "hotplug": "0",
        "delete": "",
        "machine": "pc-q35-9.2+pve1",
        "cicustom": "user=local:snippets/u.yaml,meta=local:snippets/m.yaml",
    }
    assert pve.validate("PUT", CONFIG, ok) == []


def test_path_parameters_are_checked(pve):
    _one(pve.validate("GET", "/nodes/pve_1/qemu/101/config", {}), "node: invalid format - value")
    # check_prop tests the format (pve-vmid) before the minimum
    _one(pve.validate("GET", "/nodes/pve1/qemu/99/config", {}), "vmid: invalid format - value")
    _one(pve.validate("GET", "/nodes/pve1/qemu/1000000000/config", {}), "vmid: invalid format")
    _one(pve.validate("GET", "/nodes/pve1/qemu/abc/config", {}), "vmid: type check")
    _one(pve.validate("GET", CONFIG, {"node": "pve2"}), "node", "conflicts")


def test_unknown_path_or_method_is_one_violation(pve):
    _one(pve.validate("GET", "/nodes/pve1/qemu/101/nonsense", {}), "not implemented")
    _one(pve.validate("PATCH", CONFIG, {}), "Method 'PATCH", "not implemented")
    _one(pve.validate("DELETE", "/cluster/nextid", {}), "not implemented")


def test_repeated_value_for_a_scalar_parameter(pve):
    _one(pve.validate("PUT", CONFIG, {"memory": ["1024", "2048"]}), "memory", "list")


def test_check_gives_proxmox_error_body(pve9):
    errors = pve9.check("PUT", CONFIG, {"memroy": "1", "cores": "x"})
    assert set(errors) == {"memroy", "cores"}
    assert errors["cores"] == "type check ('integer') failed - got 'x'"


def test_permissions_entries(pve9, pve8):
    ping = "/nodes/pve1/qemu/101/agent/ping"
    assert "VM.GuestAgent.Audit" in json.dumps(pve9.permissions("POST", ping))
    assert "VM.Monitor" in json.dumps(pve8.permissions("POST", ping))
    assert pve9.permissions("POST", "/nodes/pve1/nothing") is None
    assert pve9.permissions("PATCH", ping) is None


def test_loading_is_quick_and_finds_both_versions():
    import time

    shared = default_shared_dir()
    _require(shared / "pve" / "apidoc.json")
    start = time.perf_counter()
    schemas = load_schemas_for_tests(shared)
    assert time.perf_counter() - start < 1.0 * len(schemas)
    names = [s.name for s in schemas]
    assert names[0] == "apidoc.json"
    assert (shared / "pve" / "apidoc-8.4.json").is_file() == ("apidoc-8.4.json" in names)


# ---- without the shared files -------------------------------------------------------------
def test_default_shared_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("AIHOST_SHARED_DIR", raising=False)
    repo_root = Path(__file__).resolve().parents[2]
    assert default_shared_dir() == repo_root.parent / "shared"
    monkeypatch.setenv("AIHOST_SHARED_DIR", str(tmp_path))
    assert default_shared_dir() == tmp_path
    assert load_schemas_for_tests(tmp_path) == []


def test_absent_schema_fails_when_required(monkeypatch, tmp_path):
    monkeypatch.setenv("AIHOST_REQUIRE_SCHEMA", "1")
    with pytest.raises(pytest.fail.Exception, match="AIHOST_REQUIRE_SCHEMA=1"):
        _require(tmp_path / "apidoc.json")
    monkeypatch.delenv("AIHOST_REQUIRE_SCHEMA")
    with pytest.raises(pytest.skip.Exception):
        _require(tmp_path / "apidoc.json")


def _tiny_schema() -> ApiSchema:
    """A hand-made schema tree exercising routing rules (no shared files needed)."""
    node = {"type": "string", "pattern": "(?^:[a-z0-9]+)"}

    def leaf(path: str, props: dict) -> dict:
        return {"path": path, "info": {"GET": {"parameters": {"properties": props}}}}

    tree = [
        {
            "path": "/things",
            "children": [
                leaf("/things/special", {}),
                {
                    **leaf("/things/{id}", {"id": node}),
                    "children": [
                        leaf(
                            "/things/{id}/files/{volume}",
                            {"id": node, "volume": {"type": "string"}},
                        ),
                    ],
                },
            ],
        }
    ]
    return ApiSchema(tree)


def test_routing_rules_on_a_tiny_tree():
    tiny = _tiny_schema()
    assert tiny.route("/things/special").template == "/things/special"
    assert tiny.route("/things/abc").path_params == {"id": "abc"}
    route = tiny.route("/things/abc/files/store:dir/sub/f.iso")
    assert route.path_params == {"id": "abc", "volume": "store:dir/sub/f.iso"}
    assert tiny.route("/things/abc/other") is None
    assert tiny.validate("GET", "/things/ABC", {}) == ["id: value does not match the regex pattern"]
    assert tiny.validate("GET", "/things/abc", {"x": "1"})[0].startswith("x: property is not")
