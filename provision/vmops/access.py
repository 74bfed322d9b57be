"""How a user reaches a VM and its LLM: the address, the endpoint, and a way in that works
for that VM (SSH with a key or password when the inventory sets one up, else the console)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from provision.errors import ApiError
from provision.guest.agent import GuestAgent
from provision.inventory.model import Vm
from provision.pve.client import PveClient
from provision.pve.node import Node

LOOPBACK = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Access:
    """The VM's address (None while unknown), the LLM endpoint and how to get in."""

    address: str | None
    endpoint: str | None
    way_in: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return asdict(self)


def static_address(vm: Vm) -> str | None:
    """The address the inventory gives the VM (None with DHCP)."""
    return None if vm.network.ip == "dhcp" else vm.network.ip.split("/")[0]


def guest_address(client: PveClient, node: str, vmid: int) -> str | None:
    """The first IPv4 address the guest agent reports (None when the agent does not answer)."""
    try:
        found = GuestAgent(Node(client, node).vm(vmid)).addresses()
    except ApiError:
        return None
    return found[0] if found else None


def access_for(vm: Vm, vmid: int | None, address: str | None) -> Access:
    """Endpoint and way in for an inventory VM at address."""
    target = address or "<vm-address>"
    user = vm.user.name
    can_ssh = bool(vm.user.ssh_keys) or vm.user.password is not None
    port = vm.runtime_port
    endpoint: str | None = None
    if vm.runtime != "none":
        if vm.listen in LOOPBACK:
            endpoint = f"http://127.0.0.1:{port} inside the VM"
        else:
            endpoint = f"http://{address or vm.listen}:{port}"
    local_only = vm.runtime != "none" and vm.listen in LOOPBACK
    tunnel = f"-L {port}:127.0.0.1:{port} " if local_only else ""
    if can_ssh:
        login = "your key" if vm.user.ssh_keys else "the inventory's password"
        way_in = f"ssh {tunnel}{user}@{target} ({login})"
    else:
        way_in = (
            f"Proxmox console of VM {vmid or '?'} (no SSH login is set up: add "
            "user.ssh_keys to the inventory)"
        )
    return Access(address, endpoint, way_in)
