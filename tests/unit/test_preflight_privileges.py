"""aihost's privilege table agrees with the permission entries of the real API schemas."""

from __future__ import annotations

import functools
import json
import os
import re

import pytest
from aihost_testing import SHARED_DIR

from provision.preflight.permissions import Requirement, grant_commands, granted, missing
from provision.preflight.privileges import CALLS, OPTION_CLASSES, drive_calls, key_calls

SCHEMAS = ["apidoc.json", "apidoc-8.4.json"]


def _load(name: str) -> dict[tuple[str, str], dict]:
    """(method, path) -> permissions of the schema file name (read once per run; the tests
    only read it)."""
    return _index(name)


@functools.cache
def _index(name: str) -> dict[tuple[str, str], dict]:
    path = SHARED_DIR / "pve" / name
    if not path.exists():
        if os.environ.get("AIHOST_REQUIRE_SCHEMA") == "1":
            pytest.fail(f"{path} is missing and AIHOST_REQUIRE_SCHEMA=1")
        pytest.skip(f"Proxmox's API schema is not at {path}")
    index: dict[tuple[str, str], dict] = {}

    def walk(nodes: list[dict]) -> None:
        for node in nodes:
            for method, info in (node.get("info") or {}).items():
                index[(method, node["path"])] = info.get("permissions") or {}
            walk(node.get("children") or [])

    walk(json.loads(path.read_text()))
    return index


def _check_privileges(check: list) -> set[str]:
    """Every privilege named anywhere in a permissions check expression."""
    found: set[str] = set()
    if isinstance(check, list):
        for item in check:
            if isinstance(item, list):
                if all(isinstance(x, str) for x in item) and any("." in x for x in item):
                    found.update(item)
                else:
                    found |= _check_privileges(item)
    return found


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("call", sorted(CALLS))
def test_each_call_is_checked_with_the_privileges_the_schema_names(schema, call):
    index = _load(schema)
    need = CALLS[call]
    permissions = index.get((need.method, need.path))
    assert permissions is not None, f"{need.method} {need.path} is not in {schema}"
    named = _check_privileges(permissions.get("check") or []) | set(
        re.findall(r"'([A-Z][A-Za-z]+\.[A-Za-z.]+)'", permissions.get("description") or "")
    )
    if need.source in ("docs", "code"):
        return  # stated by Proxmox's mapping docs or only in qemu-server's code
    present = [p for p in need.any_of if p in named]
    assert present, f"{call}: none of {need.any_of} in {schema}'s entry {sorted(named)}"
    if schema == "apidoc.json":
        assert "VM.Monitor" not in named or call != "agent-exec"


def test_pve9_agent_calls_need_guest_agent_privileges_and_pve8_vm_monitor():
    nine = _load("apidoc.json")[("GET", "/nodes/{node}/qemu/{vmid}/agent/exec-status")]
    eight = _load("apidoc-8.4.json")[("GET", "/nodes/{node}/qemu/{vmid}/agent/exec-status")]
    assert "VM.GuestAgent.Unrestricted" in _check_privileges(nine["check"])
    assert "VM.Monitor" in _check_privileges(eight["check"])
    assert set(CALLS["agent-exec"].any_of) == {"VM.GuestAgent.Unrestricted", "VM.Monitor"}


def test_every_configure_privilege_is_one_the_config_call_accepts():
    entry = _load("apidoc.json")[("POST", "/nodes/{node}/qemu/{vmid}/config")]
    accepted = _check_privileges(entry["check"])
    calls = set(OPTION_CLASSES) | set(key_calls("hostpci0")) | set(key_calls("net0"))
    calls |= set(drive_calls("local-lvm:cloudinit")) | set(drive_calls("local-lvm:vm-1-disk-0"))
    for call in calls - {"configure-power"}:  # freeze/vmstate: VM.PowerMgmt, in code only
        assert set(CALLS[call].any_of) <= accepted, call


def test_granted_follows_propagation():
    perms = {"/vms": {"VM.Audit": 1, "VM.PowerMgmt": 0}, "/": {"Sys.Audit": 1}}
    assert granted(perms, "/vms/120", "VM.Audit")
    assert not granted(perms, "/vms/120", "VM.PowerMgmt")  # set on /vms without propagate
    assert granted(perms, "/vms", "VM.PowerMgmt")
    assert granted(perms, "/storage/local", "Sys.Audit")


def test_missing_lists_each_gap_once_and_grant_commands_name_the_token():
    needs = [
        Requirement("/vms/120", ("VM.PowerMgmt",), "start"),
        Requirement("/vms/120", ("VM.PowerMgmt",), "stop"),
        Requirement("/mapping/pci/gpu", ("Mapping.Use",), "attach"),
    ]
    gaps = missing({"/": {"VM.Audit": 1}}, needs)
    assert [g.any_of for g in gaps] == [("VM.PowerMgmt",), ("Mapping.Use",)]
    commands = grant_commands("aihost@pve!prov", gaps)
    assert any("pveum acl modify /vms/120 --tokens 'aihost@pve!prov'" in c for c in commands)
    assert 'pveum role add AihostNeeds2 --privs "VM.PowerMgmt"' in commands
    # a built-in role that covers the gap is named, not a new one
    mapping = "pveum acl modify /mapping/pci/gpu --tokens 'aihost@pve!prov' --roles PVEMappingUser"
    assert mapping in commands
