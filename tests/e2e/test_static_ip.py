"""A VM with a static IP gets it, with either delivery, and a changed IP reaches the
running guest with the restart `vm up` makes for it. The simulated guest applies a
network-config as Debian 12's cloud-init does (provision.sim.guest_netcfg): at a new
instance's first boot, or at every boot when the user-data asks for it; matched to the
NIC by its MAC."""

from __future__ import annotations

from typing import Any

import pytest
from aihost_testing import run_aihost

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}
HOSTS = {"snippet": {}, "iso": {"ssh": None}}


def _up(inventory: Any) -> dict[str, Any]:
    """`vm up box`'s JSON, checked: no warning that the guest lacks its static IP."""
    result = run_aihost("-i", str(inventory), "-o", "json", "vm", "up", "box")
    assert result.exit_code == 0, result.stderr
    out = dict(result.json())
    assert not [w for w in out.get("warnings", []) if "static IP" in w], out["warnings"]
    return out


def _api(sim: Any) -> Any:
    from proxmoxer import ProxmoxAPI

    host, port = sim.server.url.removeprefix("https://").split(":")
    user, token = sim.server.token_id.split("!")
    return ProxmoxAPI(
        host,
        port=int(port),
        user=user,
        token_name=token,
        token_value=sim.server.token_secret,
        verify_ssl=str(sim.server.cert_path),
    )


def test_a_nic_given_another_mac_by_hand_gets_its_ip_back(sim: Any, tmp_path: Any) -> None:
    """Someone gives the NIC a new MAC in the GUI and restarts the VM: the ISO's
    network-config names the old one, so the guest comes up without its static IP. The
    next `vm up` makes a network-config for the new MAC, restarts, and the IP is back."""
    vms = {"box": {**LLM, "network": {"ip": "192.168.50.30/24"}}}
    inventory = sim.inventory(tmp_path / "inv.yaml", vms, host=HOSTS["iso"])
    made = _up(inventory)
    vm = _api(sim).nodes("pve1").qemu(made["vmid"])
    vm.config.put(net0="virtio=BC:24:11:12:34:56,bridge=vmbr0")
    for action in ("stop", "start"):
        upid = getattr(vm.status, action).post()
        while vm.status.current.get()["status"] != ("stopped" if action == "stop" else "running"):
            assert _api(sim).nodes("pve1").tasks(upid).status.get()["status"] == "running"
    ifaces = vm.agent("network-get-interfaces").get()["result"]
    addresses = [a["ip-address"] for i in ifaces for a in i.get("ip-addresses", [])]
    assert "192.168.50.30" not in addresses
    healed = _up(inventory)
    assert "restart" in healed["applied"] and healed["address"] == "192.168.50.30"


@pytest.mark.parametrize("delivery", sorted(HOSTS))
def test_a_changed_static_ip_reaches_the_running_guest(sim: Any, tmp_path: Any, delivery: str):
    def inventory(ip: str) -> Any:
        network = {"ip": f"{ip}/24", "gateway": "192.168.50.1", "nameserver": "192.168.50.53"}
        vms = {"box": {**LLM, "network": network}}
        return sim.inventory(tmp_path / "inv.yaml", vms, host=HOSTS[delivery])

    made = _up(inventory("192.168.50.10"))
    assert made["address"] == "192.168.50.10"
    moved = _up(inventory("192.168.50.11"))
    assert "restart" in moved["applied"], moved["plan"]
    assert moved["address"] == "192.168.50.11"
    again = _up(inventory("192.168.50.11"))
    assert again["applied"] == [] and again["address"] == "192.168.50.11"


def test_a_new_iso_vm_gets_the_mac_its_network_config_names(sim: Any, tmp_path: Any) -> None:
    """A clone draws a random MAC: the configure write gives the VM the one the ISO's
    network-config was made for, and a re-run keeps it."""
    vms = {"box": {**LLM, "network": {"ip": "192.168.50.20/24"}}}
    inventory = sim.inventory(tmp_path / "inv.yaml", vms, host=HOSTS["iso"])
    made = _up(inventory)
    writes = [
        r["params"]["net0"]
        for r in sim.requests()
        if r["path"].endswith(f"/qemu/{made['vmid']}/config") and "net0" in r.get("params", {})
    ]
    assert len(writes) == 1 and writes[0].startswith("virtio=BC:24:11:"), writes
    assert made["address"] == "192.168.50.20"
    assert _up(inventory)["applied"] == []
