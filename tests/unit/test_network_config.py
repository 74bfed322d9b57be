"""The network-config of an ISO delivery, rendered for the guest by Debian's own cloud-init
(`cloud-init devel net-convert`): the ENI files of Debian 12 (cloud-init 22.4, ifupdown)
and the netplan file of Ubuntu, as the guest writes them at its first boot."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from aihost_testing import require_tool

from provision.delivery.network import chosen_mac, mac_of, network_config
from provision.inventory import parse_inventory

MAC = "bc:24:11:0a:1b:2c"
INVENTORY = (
    "hosts: {pve1: {api: sim}}\n"
    "vms:\n"
    "  dhcp: {host: pve1, template: t}\n"
    "  static: {host: pve1, template: t, network: {ip: 10.1.2.3/24, gateway: 10.1.2.1,"
    " nameserver: '10.1.2.53 10.1.2.54'}}\n"
    "  resolver: {host: pve1, template: t, network: {nameserver: 10.1.2.53}}\n"
)


def _vms():  # type: ignore[no-untyped-def]
    return parse_inventory(INVENTORY, "inv.yaml").vms


def _converted(tmp_path: Path, text: str, distro: str, kind: str) -> dict[str, str]:
    """cloud-init's own rendering of network-config text for distro, as {path: text}."""
    tool = require_tool("cloud-init")
    source = tmp_path / "network-config"
    source.write_text(text)
    out = tmp_path / f"{distro}-{kind}"
    command = [tool, "devel", "net-convert", "-p", str(source), "-k", "yaml"]
    command += ["-D", distro, "-O", kind, "-d", str(out), "-m", f"ens18,{MAC}"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}


def test_dhcp_needs_no_network_config() -> None:
    assert network_config(_vms()["dhcp"], MAC) is None


def test_debian_12_brings_up_the_static_address_on_the_nic_with_that_mac(tmp_path: Path) -> None:
    """ifupdown gets eth0 with the address, its gateway and both nameservers, and udev
    renames the NIC with the VM's MAC to eth0 (whatever the kernel called it)."""
    files = _converted(tmp_path, network_config(_vms()["static"], MAC) or "", "debian", "eni")
    eni = files["etc/network/interfaces.d/50-cloud-init"]
    stanza = eni[eni.index("iface eth0 inet static") :]
    assert "address 10.1.2.3/24" in stanza
    assert "gateway 10.1.2.1" in stanza
    assert "dns-nameservers 10.1.2.53 10.1.2.54" in eni
    rules = files["etc/udev/rules.d/70-persistent-net.rules"]
    assert f'ATTR{{address}}=="{MAC}", NAME="eth0"' in rules


def test_ubuntu_netplan_matches_the_nic_by_its_mac(tmp_path: Path) -> None:
    import yaml

    files = _converted(tmp_path, network_config(_vms()["static"], MAC) or "", "ubuntu", "netplan")
    eth0 = yaml.safe_load(files["etc/netplan/50-cloud-init.yaml"])["network"]["ethernets"]["eth0"]
    assert eth0["match"] == {"macaddress": MAC} and eth0["set-name"] == "eth0"
    assert eth0["addresses"] == ["10.1.2.3/24"]
    assert eth0["gateway4"] == "10.1.2.1"
    assert eth0["nameservers"]["addresses"] == ["10.1.2.53", "10.1.2.54"]


def test_nameservers_alone_keep_dhcp(tmp_path: Path) -> None:
    files = _converted(tmp_path, network_config(_vms()["resolver"], MAC) or "", "debian", "eni")
    eni = files["etc/network/interfaces.d/50-cloud-init"]
    assert "iface eth0 inet dhcp" in eni and "dns-nameservers 10.1.2.53" in eni


@pytest.mark.parametrize(
    ("net0", "mac"),
    [
        ("virtio=BC:24:11:0A:1B:2C,bridge=vmbr0", MAC),
        ("e1000=bc:24:11:0a:1b:2c,bridge=vmbr0,tag=5", MAC),
        ("virtio,bridge=vmbr0", None),
        ("", None),
    ],
)
def test_mac_of_a_net_option(net0: str, mac: str | None) -> None:
    assert mac_of(net0) == mac


def test_a_chosen_mac_is_proxmox_s_prefix_and_stable_per_vm() -> None:
    one = chosen_mac("https://pve1:8006", "pve1", "llm-box")
    assert one == chosen_mac("https://pve1:8006", "pve1", "llm-box")
    assert one.startswith("bc:24:11:") and mac_of(f"virtio={one}") == one
    assert one != chosen_mac("https://pve1:8006", "pve1", "other-box")


def test_a_guest_without_its_static_ip_is_warned_about() -> None:
    from provision.vmops.access import static_ip_warnings

    static, dhcp = _vms()["static"], _vms()["dhcp"]
    assert static_ip_warnings(static, ["10.1.2.3"]) == []
    assert static_ip_warnings(static, None) == []  # not verified: nothing to say
    assert static_ip_warnings(dhcp, ["10.9.9.9"]) == []
    (line,) = static_ip_warnings(static, [])
    assert "does not have its static IP 10.1.2.3 (it reports no IPv4 address)" in line
    (line,) = static_ip_warnings(static, ["10.9.9.9"])
    assert "(it reports 10.9.9.9)" in line
