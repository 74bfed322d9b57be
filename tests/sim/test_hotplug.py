"""What a running VM takes at once and what waits in [PENDING] (qemu-server
PVE/QemuServer.pm `vmconfig_hotplug_pending`, called by update_vm_api for a running VM;
its per-key branches: provision.sim.hotplug)."""

from __future__ import annotations

from typing import Any

NODE = "pve1"


def _running(sim: Any, api: Any, vmid: int, **config: Any) -> Any:
    upid = api.nodes(NODE).qemu(9000).clone.post(newid=vmid, name=f"vm{vmid}", full=1)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    vm = api.nodes(NODE).qemu(vmid)
    if config:
        vm.config.put(**config)  # stopped: written at once
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"
    return vm


def _pending(vm: Any) -> dict[str, Any]:
    return {r["key"]: r for r in vm.pending.get() if "pending" in r or r.get("delete")}


def test_cloud_init_options_are_fast_plugged_not_left_pending(sim: Any) -> None:
    """`$fast_plug_option` gets every `$confdesc_cloudinit` option (citype, ciuser,
    cipassword, ciupgrade, cicustom, searchdomain, nameserver, sshkeys, ipconfigN), and
    migrate_downtime/migrate_speed: a running VM's config takes them at once."""
    api = sim.api()
    vm = _running(sim, api, 150)
    vm.config.put(
        cicustom="user=local:snippets/u.yaml",
        ipconfig0="ip=10.0.0.5/24,gw=10.0.0.1",
        ipconfig1="ip=dhcp",
        ciuser="ops",
        nameserver="10.0.0.53",
        searchdomain="lan",
        ciupgrade=0,
        migrate_downtime=0.5,
        memory="4096",
    )
    assert set(_pending(vm)) == {"memory"}
    current = vm.config.get(current=1)
    assert current["cicustom"] == "user=local:snippets/u.yaml"
    assert current["ipconfig1"] == "ip=dhcp" and current["ciuser"] == "ops"
    vm.config.put(delete="nameserver,searchdomain")
    assert "nameserver" not in vm.config.get(current=1)
    assert set(_pending(vm)) == {"memory"}


def test_hotplug_is_live_unless_memory_or_cpu_hotplug_is_involved(sim: Any) -> None:
    """`hotplug` is not a fast-plug option: vmconfig_hotplug_pending takes it live unless
    the new or the current value names memory or cpu; its deletion unless the current
    one does."""
    api = sim.api()
    vm = _running(sim, api, 151)
    vm.config.put(hotplug="network,disk")
    assert vm.config.get(current=1)["hotplug"] == "network,disk" and _pending(vm) == {}
    vm.config.put(hotplug="network,disk,memory")
    assert _pending(vm)["hotplug"]["pending"] == "network,disk,memory"
    other = _running(sim, api, 152, hotplug="cpu,disk")
    other.config.put(hotplug="disk")
    assert _pending(other)["hotplug"]["pending"] == "disk"
    other.config.put(delete="hotplug")
    assert _pending(other)["hotplug"]["delete"] == 1
    assert other.config.get(current=1)["hotplug"] == "cpu,disk"


def test_setting_a_key_drops_its_pending_deletion(sim: Any) -> None:
    """update_vm_api's $updatefn: QemuConfig remove_from_pending_delete for each set key,
    also one applied at once."""
    api = sim.api()
    vm = _running(sim, api, 153, hotplug="network,memory")
    vm.config.put(delete="hotplug")
    assert _pending(vm)["hotplug"]["delete"] == 1
    vm.config.put(hotplug="network,memory")
    row = _pending(vm)["hotplug"]  # names memory: pending, no longer a deletion
    assert row["pending"] == "network,memory" and "delete" not in row


def test_a_nic_is_changed_live_on_its_tap_or_replugged_with_network_hotplug(sim: Any) -> None:
    """vmconfig_update_net: a new bridge, tag or firewall is made on the tap device even
    with hot-plug off; a new model or MAC, or a new NIC, needs `network` hot-plug (on by
    default), else it waits; so does a deletion."""
    api = sim.api()
    off = _running(sim, api, 154, hotplug="0")
    mac = off.config.get()["net0"].split(",")[0]  # virtio=MAC, as stored
    off.config.put(net0=f"{mac},bridge=vmbr0,firewall=1,tag=20")
    assert _pending(off) == {} and "tag=20" in off.config.get(current=1)["net0"]
    off.config.put(net0=f"e1000={mac.split('=')[1]},bridge=vmbr0")
    off.config.put(net1="virtio,bridge=vmbr0")
    assert set(_pending(off)) == {"net0", "net1"}
    off.config.put(delete="net1")
    assert "net1" not in _pending(off)  # a pending value is only dropped
    default = _running(sim, api, 155)
    default.config.put(net0="e1000,bridge=vmbr0", net1="virtio,bridge=vmbr0")
    current = default.config.get(current=1)
    assert current["net0"].startswith("e1000=") and "net1" in current
    assert _pending(default) == {}
    default.config.put(delete="net1")
    assert "net1" not in default.config.get(current=1)
    unplug_off = _running(sim, api, 156, hotplug="disk")
    unplug_off.config.put(delete="net0")
    assert _pending(unplug_off)["net0"]["delete"] == 1


def test_agent_balloon_cgroup_and_tablet_follow_their_branches(sim: Any) -> None:
    """vmconfig_update_agent: only fstrim_cloned_disks changes live, and only on a VM whose
    agent setting is there (a first one, or a deletion, waits); balloon: live unless the
    device is turned on or off; cpuunits and cpulimit: the cgroup, live; tablet: needs
    `usb` hot-plug."""
    api = sim.api()
    vm = _running(sim, api, 157, agent="1", balloon="1024", hotplug="network")
    vm.config.put(agent="enabled=1,fstrim_cloned_disks=1", balloon="512", cpuunits="200")
    vm.config.put(cpulimit="2")
    current = vm.config.get(current=1)
    assert current["agent"] == "enabled=1,fstrim_cloned_disks=1" and current["balloon"] == 512
    # check_type: an integer comes back as a number, a `number` (cpulimit) as its string
    assert (current["cpuunits"], current["cpulimit"], _pending(vm)) == (200, "2", {})
    vm.config.put(agent="1,type=isa", balloon="0", tablet="0")
    assert set(_pending(vm)) == {"agent", "balloon", "tablet"}
    vm.config.put(delete="agent,cpuunits")
    assert _pending(vm)["agent"]["delete"] == 1 and "cpuunits" not in vm.config.get(current=1)
    first = _running(sim, api, 158, delete="agent")  # the template has one
    first.config.put(agent="1")
    assert _pending(first)["agent"]["pending"] == "1"


def test_a_cd_rom_gets_its_new_medium_live_other_drives_wait(sim: Any, tmp_path: Any) -> None:
    """vmconfig_update_disk: a CD-ROM given another ISO is changed live (change_medium),
    even with hot-plug off; ide drives are never hot-plugged, so a new one waits."""
    api = sim.api()
    for name in ("a.iso", "b.iso"):
        (tmp_path / name).write_bytes(b"\0" * 2048)
        with (tmp_path / name).open("rb") as handle:
            upload = api.nodes(NODE).storage("local").upload.post(content="iso", filename=handle)
            assert sim.wait(api, upload)["exitstatus"] == "OK"
    vm = _running(sim, api, 159, hotplug="0", ide3="local:iso/a.iso,media=cdrom")
    vm.config.put(ide3="local:iso/b.iso,media=cdrom", ide1="local:iso/a.iso,media=cdrom")
    assert vm.config.get(current=1)["ide3"] == "local:iso/b.iso,media=cdrom"
    assert set(_pending(vm)) == {"ide1"}
