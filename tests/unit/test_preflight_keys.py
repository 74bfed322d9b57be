"""aihost's per-key privilege table and the simulator's copy of qemu-server's checks
($check_vm_modify_config_perm, $check_drive_perms, check_vnet_access) agree, and so do
the built-in roles the pre-flight names with pve-access-control's."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from provision.inventory import parse_inventory
from provision.plan.desired import desired_vm
from provision.preflight.permissions import BUILTIN_ROLES, builtin_role
from provision.preflight.privileges import CALLS, bridge_vnets, drive_calls, key_calls
from provision.sim import configperm
from provision.sim.roles import ROLES

INV = """
hosts:
  pve1: {api: sim}
gpus:
  g1: {host: pve1, mapping: rtx4090, vram_gb: 24}
vms:
  box:
    host: pve1
    template: t
    gpu: g1
    network: {ip: 192.168.1.9/24, gateway: 192.168.1.1, vlan: 20, nameserver: 1.1.1.1}
    user: {name: me, ssh_keys: ["ssh-ed25519 AAAAC3Nza me@x"]}
"""
SIM_CLASSES = (
    configperm.CPU_OPTIONS
    | configperm.MEMORY_OPTIONS
    | configperm.HWTYPE_OPTIONS
    | configperm.GENERAL_OPTIONS
    | configperm.POWER_OPTIONS
    | configperm.DISK_OPTIONS
    | configperm.CLOUDINIT_OPTIONS
)
OTHER_KEYS = {
    "numa0",
    "net3",
    "ipconfig2",
    "vmstate",
    "running-nets-host-mtu",
    "args",
    "lock",
    "hugepages",
    "affinity",
    "vmgenid",
    "meta",
    "hookscript",
    "ivshmem",
    "spice",
}


@dataclass
class _Recorder:
    """Stands in for the simulator's request context: records what it would require."""

    required: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    class identity:  # noqa: N801 - the attribute Ctx has
        is_root_ticket = False

    def require(self, path: str, privs: list[str], any_of: bool = False) -> None:
        self.required += [(path, tuple(privs))] if any_of else [(path, (p,)) for p in privs]


def _aihost(key: str) -> set[tuple[str, ...]] | None:
    calls = key_calls(key)
    if calls == ("root-only",):
        return None
    return {CALLS[c].any_of for c in calls}


def _sim(key: str) -> set[tuple[str, ...]] | None:
    need = configperm.option_privileges(key)
    if need is None:
        return None
    privs, any_of = need
    return {privs} if any_of else {(p,) for p in privs}


@pytest.mark.parametrize("key", sorted(SIM_CLASSES - {"tags"} | OTHER_KEYS))
def test_each_key_needs_the_same_privileges_in_aihost_and_in_the_simulator(key):
    assert _aihost(key) == _sim(key), key


def test_every_key_aihost_writes_is_one_a_token_may_set():
    inv = parse_inventory(INV, "x")
    config = desired_vm(inv, "box").config
    keys = set(config) | {"scsihw", "boot", "scsi0", "description"}
    assert not [k for k in keys if key_calls(k) == ("root-only",)]
    assert key_calls("tags") == ("configure-options",)  # assert_tag_permissions
    assert key_calls("hostpci0") == ("configure-hw",)  # check_hostpci_perm, with Mapping.Use


@pytest.mark.parametrize(
    "value",
    [
        "local-lvm:cloudinit",
        "local-lvm:vm-100-cloudinit,media=cdrom",
        "local:iso/aihost-box.iso,media=cdrom",
        "local-lvm:vm-100-disk-0,size=32G",
        "local-lvm:1,efitype=4m,pre-enrolled-keys=0",
    ],
)
def test_drive_privileges_agree_with_the_simulators_drive_check(value):
    recorder = _Recorder()
    configperm.drive_perms(recorder, "100", value)  # type: ignore[arg-type]
    assert {p for _path, p in recorder.required} == {CALLS[c].any_of for c in drive_calls(value)}


@pytest.mark.parametrize(
    "net",
    [
        "virtio,bridge=vmbr0",
        "virtio=BC:24:11:00:00:01,bridge=vmbr1,tag=20",
        "e1000,bridge=vmbr0,trunks=10;20-22",
        "virtio,bridge=vmbr0,tag=5,trunks=7",
        "virtio",
    ],
)
def test_bridge_paths_agree_with_the_simulators_vnet_check(net):
    recorder = _Recorder()
    configperm.bridge_access(recorder, {"net0": net})  # type: ignore[arg-type]
    expected = [CALLS["bridge"].acl.format(vnet=v) for v in bridge_vnets(net)]
    assert [path for path, _p in recorder.required] == expected
    assert all(p == ("SDN.Use",) for _path, p in recorder.required)


def test_built_in_roles_named_in_fixes_are_proxmoxs():
    for name, privs in BUILTIN_ROLES.items():
        assert ROLES[name] == privs, name
    assert builtin_role(["SDN.Use"]) == "PVESDNUser"
    assert builtin_role(["SDN.Use", "VM.Audit"]) is None
