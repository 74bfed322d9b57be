"""Who may set which VM option, and which refusals come before the worker and which in it,
as qemu-server 9.2 does (src/PVE/API2/Qemu.pm, src/PVE/QemuServer.pm), with Proxmox's
built-in roles (pve-access-control src/PVE/AccessControl.pm)."""

from __future__ import annotations

import pytest
from proxmoxer.core import ResourceException

from provision.sim.auth import ALL_PRIVS
from provision.sim.roles import ROLES

GPU_4090 = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"
NO_SDN = "aihost@pve!nosdn"
VMBR0 = "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)"


def _fail(call, *args, **kw) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call(*args, **kw)
    return caught.value


def _clone(sim, newid: int = 100):
    api = sim.api()
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=newid, name=f"vm{newid}", full=1)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    return api.nodes("pve1").qemu(newid)


def _vm(sim, token: str, vmid: int = 100):
    return sim.api(token).nodes("pve1").qemu(vmid)


def test_built_in_roles_are_built_as_access_control_builds_them():
    """AccessControl.pm $privgroups and create_roles: PVEVMAdmin has no SDN.Use."""
    assert "SDN.Use" not in ROLES["PVEVMAdmin"]
    assert {"VM.Config.Cloudinit", "VM.Config.CDROM", "VM.PowerMgmt"} <= ROLES["PVEVMAdmin"]
    assert ROLES["PVESDNUser"] == {"SDN.Use", "SDN.Audit"}
    assert "SDN.Use" in ROLES["PVEAdmin"] and "Mapping.Modify" not in ROLES["PVEAdmin"]
    assert ROLES["PVETemplateUser"] == {"VM.Clone", "VM.Audit"}
    assert ROLES["Administrator"] == set(ALL_PRIVS)


def test_clone_checks_the_bridges_of_the_source_before_the_fork(sim):
    """clone_vm $load_and_check: check_bridge_access($oldconf) before fork_worker."""
    api = sim.api(NO_SDN)
    err = _fail(api.nodes("pve1").qemu(9000).clone.post, newid=100, name="x", full=1)
    assert err.status_code == 403 and err.content == VMBR0
    assert 100 not in [v["vmid"] for v in sim.api().cluster.resources.get(type="vm")]


def test_create_needs_sdn_use_on_the_bridge_or_its_vlan(sim):
    """create_vm: check_bridge_access; check_vnet_access checks .../BRIDGE/TAG with a tag."""
    qemu = sim.api(NO_SDN).nodes("pve1").qemu
    err = _fail(qemu.post, vmid=120, net0="virtio,bridge=vmbr0")
    assert err.status_code == 403 and err.content == VMBR0
    err = _fail(qemu.post, vmid=120, net0="virtio,bridge=vmbr0,tag=20")
    assert err.content == "Permission check failed (/sdn/zones/localnetwork/vmbr0/20, SDN.Use)"
    upid = qemu.post(vmid=120, net0="virtio,bridge=vmbr1,tag=20", memory=1024)
    assert sim.wait(sim.api(), upid)["exitstatus"] == "OK"  # a grant on vmbr1 covers its VLANs


def test_config_checks_the_new_bridge_before_the_fork_and_the_old_one_in_the_worker(sim):
    """update_vm_api: check_bridge_access($param) before the fork; $updatefn checks the
    bridge of the net0 being replaced or deleted (PUT: the answer; POST: the task)."""
    _clone(sim)
    vm = _vm(sim, NO_SDN)
    for call in (vm.config.put, vm.config.post):
        err = _fail(call, net0="virtio,bridge=vmbr0,tag=5")
        assert err.content == "Permission check failed (/sdn/zones/localnetwork/vmbr0/5, SDN.Use)"
    err = _fail(vm.config.put, net0="virtio,bridge=vmbr1")
    assert err.status_code == 403 and err.content == VMBR0
    assert _fail(vm.config.put, delete="net0").content == VMBR0
    upid = vm.config.post(net0="virtio,bridge=vmbr1")
    assert sim.wait(sim.api(), upid)["exitstatus"] == VMBR0
    assert "bridge=vmbr0" in vm.config.get()["net0"]  # nothing written


def test_raw_hostpci_from_a_token_fails_in_the_config_worker(sim):
    """check_hostpci_perm runs in $updatefn: POST answers a UPID, PUT answers 500."""
    vm = _clone(sim)
    upid = vm.config.post(hostpci0="0000:01:00,pcie=1", machine="q35")
    assert upid.split(":")[5] == "qmconfig"
    status = sim.wait(sim.api(), upid)
    assert status["exitstatus"] == "only root can set 'hostpci0' config for non-mapped devices"
    config = vm.config.get()
    assert "hostpci0" not in config and "machine" not in config
    err = _fail(vm.config.put, hostpci0="0000:01:00,pcie=1")
    assert err.status_code == 500 and err.content == status["exitstatus"]


def test_create_with_raw_hostpci_from_a_token_is_refused_before_the_fork(sim):
    """create_vm: check_vm_create_hostpci_perm before fork_worker."""
    err = _fail(sim.api().nodes("pve1").qemu.post, vmid=120, hostpci0="0000:01:00")
    assert err.status_code == 500
    assert err.content == "only root can set 'hostpci0' config for non-mapped devices"


def test_missing_mapping_use_fails_the_config_worker(sim):
    """check_hostpci_perm: Mapping.Use on /mapping/pci/ID, in $updatefn."""
    sim.api().cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090])
    _clone(sim)
    vm = _vm(sim, "aihost@pve!nomapping")
    upid = vm.config.post(hostpci0="mapping=rtx4090,pcie=1")
    denied = "Permission check failed (/mapping/pci/rtx4090, Mapping.Use)"
    assert sim.wait(sim.api(), upid)["exitstatus"] == denied
    assert "hostpci0" not in vm.config.get()
    err = _fail(vm.config.put, hostpci0="mapping=rtx4090,pcie=1")
    assert err.status_code == 403 and err.content == denied


@pytest.mark.parametrize(
    ("option", "needs"),
    [
        ({"bios": "ovmf"}, "VM.Config.Options"),
        ({"agent": "1"}, "VM.Config.Options"),
        ({"boot": "order=scsi0"}, "VM.Config.Disk"),
        ({"cores": "4"}, "VM.Config.CPU"),
        ({"memory": "4096"}, "VM.Config.Memory"),
        ({"net0": "virtio,bridge=vmbr0"}, "VM.Config.Network"),
    ],
)
def test_each_option_class_needs_its_privilege(sim, option, needs):
    """$check_vm_modify_config_perm: $generaloptions, $diskoptions, $cpuoptions, ..."""
    _clone(sim)
    err = _fail(_vm(sim, "aihost@pve!hwci").config.put, **option)
    assert err.status_code == 403 and err.content == f"Permission check failed (/vms/100, {needs})"


def test_cloud_init_options_need_cloudinit_or_network_and_the_drive_cloudinit_and_cdrom(sim):
    """cloud-init options: VM.Config.Cloudinit|VM.Config.Network (any); the cloud-init
    drive: $check_drive_perms wants VM.Config.Cloudinit and VM.Config.CDROM."""
    _clone(sim)
    vm = _vm(sim, "aihost@pve!hwci")
    vm.config.put(ciuser="ubuntu", ipconfig0="ip=dhcp", machine="q35")
    err = _fail(vm.config.put, ide2="local-lvm:cloudinit")
    assert err.content == "Permission check failed (/vms/100, VM.Config.CDROM)"
    upid = vm.config.post(delete="ide2")  # the old drive is checked in the worker
    assert sim.wait(sim.api(), upid)["exitstatus"] == err.content


def test_tags_are_checked_in_the_worker(sim):
    """tags skip $check_vm_modify_config_perm; assert_tag_permissions runs in $updatefn."""
    _clone(sim)
    upid = _vm(sim, "aihost@pve!hwci").config.post(tags="aihost")
    status = sim.wait(sim.api(), upid)
    assert status["exitstatus"] == "Permission check failed (/vms/100, VM.Config.Options)"


@pytest.mark.parametrize("params", [{"args": "-no-hpet"}, {"hugepages": "2"}, {"delete": "lock"}])
def test_options_in_no_class_are_root_only_even_for_roots_token(sim, params):
    """$check_vm_modify_config_perm: "only root can set 'X' config" (root@pam!token is not
    root@pam); a root@pam password login may."""
    _clone(sim)
    key = params.get("delete") or next(iter(params))
    err = _fail(_vm(sim, "root@pam!aihost").config.put, **params)
    assert err.status_code == 500 and err.content == f"only root can set '{key}' config"
    if key != "lock":
        sim.root().nodes("pve1").qemu(100).config.put(**params)


def test_skiplock_from_a_token_is_a_parameter_error(sim):
    """update_vm_api: raise_param_exc skiplock => "Only root may use this option."."""
    vm = _clone(sim)
    err = _fail(vm.config.put, cores=2, skiplock=1)
    assert err.status_code == 400 and "Only root may use this option." in str(err.errors)


def test_a_config_write_without_options_is_refused(sim):
    """update_vm_api: die "no options specified" when neither options nor delete are given
    (a digest alone is not an option)."""
    vm = _clone(sim)
    digest = vm.config.get()["digest"]
    for call in (vm.config.put, vm.config.post):
        err = _fail(call, digest=digest)
        assert err.status_code == 500 and err.content == "no options specified"


def test_hostpci_with_neither_host_nor_mapping_is_refused_for_a_token(sim):
    """qemu-server API2/Qemu.pm check_hostpci_perm: die "either 'host' or 'mapping' must
    be set." for a non-root caller; create_vm checks it before the fork
    (check_vm_create_hostpci_perm), update_vm_api in $updatefn (PUT: the answer; POST: the
    task), clone_vm in check_mapping_access (QemuServer.pm) on the source config."""
    either = "either 'host' or 'mapping' must be set."
    api = sim.api()
    err = _fail(api.nodes("pve1").qemu.post, vmid=120, hostpci0="pcie=1")
    assert err.status_code == 500 and err.content == either
    vm = _clone(sim)
    err = _fail(vm.config.put, hostpci0="pcie=1")
    assert err.status_code == 500 and err.content == either
    upid = vm.config.post(hostpci0="pcie=1")
    assert sim.wait(api, upid)["exitstatus"] == either
    sim.root().nodes("pve1").qemu(100).config.put(hostpci0="pcie=1")
    err = _fail(vm.clone.post, newid=101, name="vm101", full=1)
    assert err.status_code == 500 and err.content == either


def test_serial_ports_and_romfile_are_root_only_for_a_token(sim):
    """qemu-server API2/Qemu.pm: $check_vm_create_serial_perm (a socket needs
    VM.Config.HWType, a real port "only root can set 'serialN' config for real devices";
    $updatefn says "modify" / "delete"), and check_hostpci_perm's raise_param_exc for
    romfile (HTTP 400)."""
    api = sim.api()
    api.cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090])
    err = _fail(api.nodes("pve1").qemu.post, vmid=120, serial0="/dev/ttyS0")
    assert (err.status_code, err.content) == (
        500,
        "only root can set 'serial0' config for real devices",
    )
    vm = _clone(sim)
    vm.config.put(serial0="socket")
    sim.root().nodes("pve1").qemu(100).config.put(serial1="/dev/ttyS1")
    err = _fail(vm.config.put, serial0="/dev/ttyS0")
    assert err.content == "only root can modify 'serial0' config for real devices"
    err = _fail(vm.config.put, delete="serial1")
    assert err.content == "only root can delete 'serial1' config for real devices"
    err = _fail(vm.config.put, hostpci0="mapping=rtx4090,romfile=gpu.rom")
    assert err.status_code == 400
    assert err.errors == {"hostpci0": "only root@pam can set 'romfile' option"}
