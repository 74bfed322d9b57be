"""The address the simulated guest reports (agent network-get-interfaces) is the one the
network-config cloud-init applied gave it (provision.sim.guest_netcfg): applied at an
instance's first boot, at every boot only when the user-data's `updates` asks for it;
matched to the NIC by its MAC; a version 2 `to: default` route refused as by Debian 12's
cloud-init 22.4. Driven through proxmoxer, as any client would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provision.delivery.iso import build_cidata_iso

AGENT = "#cloud-config\npackages: [qemu-guest-agent]\n"
BOOT_UPDATES = AGENT + "updates:\n  network:\n    when: [boot]\n"


def _snippet(sim: Any, name: str, text: str) -> str:
    (sim.state_dir / "storage" / "local" / "snippets" / name).write_text(text)
    return f"local:snippets/{name}"


def _vm(sim: Any, api: Any, vmid: int, **config: Any) -> Any:
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=vmid, name=f"net{vmid}", full=1)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    vm = api.nodes("pve1").qemu(vmid)
    vm.config.put(**config)
    return vm


def _restart(sim: Any, api: Any, vm: Any) -> None:
    if vm.status.current.get()["status"] == "running":
        assert sim.wait(api, vm.status.stop.post())["exitstatus"] == "OK"
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"


def _ipv4(vm: Any) -> list[str]:
    ifaces = vm.agent("network-get-interfaces").get()["result"]
    return [
        f"{a['ip-address']}/{a['prefix']}"
        for i in ifaces
        if i["name"] != "lo"
        for a in i.get("ip-addresses", [])
        if a["ip-address-type"] == "ipv4"
    ]


def _pinned(sim: Any, user_data: str) -> str:
    user = _snippet(sim, "u.yaml", user_data)
    meta = _snippet(sim, "m.yaml", "instance-id: pinned-1\n")
    return f"user={user},meta={meta}"


def test_a_changed_ip_is_ignored_by_the_same_instance_and_applied_by_a_new_one(sim: Any) -> None:
    api = sim.api()
    vm = _vm(sim, api, 160, cicustom=_pinned(sim, AGENT), ipconfig0="ip=10.0.0.5/24,gw=10.0.0.1")
    _restart(sim, api, vm)
    assert _ipv4(vm) == ["10.0.0.5/24"]
    vm.config.put(ipconfig0="ip=10.0.0.6/24,gw=10.0.0.1")
    _restart(sim, api, vm)
    assert _ipv4(vm) == ["10.0.0.5/24"]  # Proxmox wrote the new one; cloud-init ignored it
    _snippet(sim, "m.yaml", "instance-id: pinned-2\n")
    _restart(sim, api, vm)
    assert _ipv4(vm) == ["10.0.0.6/24"]


def test_boot_updates_apply_a_changed_ip_at_the_next_boot(sim: Any) -> None:
    api = sim.api()
    cicustom = _pinned(sim, BOOT_UPDATES)
    vm = _vm(sim, api, 161, cicustom=cicustom, ipconfig0="ip=10.0.0.5/24,gw=10.0.0.1")
    _restart(sim, api, vm)
    vm.config.put(ipconfig0="ip=10.0.0.7/25,gw=10.0.0.1")
    _restart(sim, api, vm)
    assert _ipv4(vm) == ["10.0.0.7/25"]


def test_without_a_meta_data_file_the_instance_follows_the_network_config(sim: Any) -> None:
    """Proxmox's own instance-id is SHA-1 of user-data and network-config: a new IP makes
    a new instance, whose first boot applies it."""
    api = sim.api()
    user = _snippet(sim, "u.yaml", AGENT)
    vm = _vm(sim, api, 162, cicustom=f"user={user}", ipconfig0="ip=10.0.0.5/24")
    _restart(sim, api, vm)
    vm.config.put(ipconfig0="ip=10.0.0.8/24")
    _restart(sim, api, vm)
    assert _ipv4(vm) == ["10.0.0.8/24"]


def _iso_vm(sim: Any, api: Any, vmid: int, network: Callable[[str], str], tmp_path: Any) -> Any:
    """A VM booted with an ISO whose network-config is network(the VM's MAC address)."""
    vm = _vm(sim, api, vmid, agent=1)
    mac = str(vm.config.get()["net0"]).split(",")[0].split("=")[1].lower()
    files = {
        "user-data": AGENT,
        "meta-data": "instance-id: iso-1\n",
        "network-config": network(mac),
    }
    path = tmp_path / f"seed{vmid}.iso"
    path.write_bytes(build_cidata_iso({k: v.encode() for k, v in files.items()}))
    with path.open("rb") as handle:
        upload = api.nodes("pve1").storage("local").upload.post(content="iso", filename=handle)
        assert sim.wait(api, upload)["exitstatus"] == "OK"
    vm.config.put(ide2=f"local:iso/{path.name},media=cdrom")
    _restart(sim, api, vm)
    return vm


def _v1(mac: str | None) -> str:
    named = f"    mac_address: '{mac}'\n" if mac else ""
    return (
        "version: 1\nconfig:\n  - type: physical\n    name: eth0\n" + named + "    subnets:\n"
        "      - type: static\n        address: 10.0.0.9\n        netmask: 255.255.255.0\n"
    )


def test_an_iso_network_config_configures_the_nic_with_its_mac(sim: Any, tmp_path: Any) -> None:
    api = sim.api()
    assert _ipv4(_iso_vm(sim, api, 164, _v1, tmp_path)) == ["10.0.0.9/24"]
    other = _iso_vm(sim, api, 165, lambda _mac: _v1("bc:24:11:00:00:01"), tmp_path)
    assert _ipv4(other) == []  # no NIC has that MAC: none is configured
    by_name = _iso_vm(sim, api, 166, lambda _mac: _v1(None), tmp_path)
    assert _ipv4(by_name) == ["10.0.0.9/24"]  # no MAC: the NIC already called eth0


def test_a_version_2_default_route_leaves_the_guest_without_ipv4(sim: Any, tmp_path: Any) -> None:
    api = sim.api()
    v2 = (
        "version: 2\nethernets:\n  eth0:\n    addresses: [10.0.0.10/24]\n"
        "    routes: [{to: default, via: 10.0.0.1}]\n"
    )
    assert _ipv4(_iso_vm(sim, api, 167, lambda _mac: v2, tmp_path)) == []
    fixed = v2.replace("to: default", "to: 0.0.0.0/0")
    assert _ipv4(_iso_vm(sim, api, 168, lambda _mac: fixed, tmp_path)) == ["10.0.0.10/24"]
