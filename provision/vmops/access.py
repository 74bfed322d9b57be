"""How a user reaches a VM and its LLM: the address, the endpoint, and a way in that works
for that VM (SSH with a key or password when the inventory sets one up, else the console)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from provision.errors import ApiError
from provision.guest.agent import GuestAgent
from provision.inventory.model import Vm
from provision.pve.client import PveClient
from provision.pve.node import Node

if TYPE_CHECKING:
    from provision.guest.verify import GuestReport
    from provision.plan.vmplan import VmState
    from provision.pve.session import Session

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


def static_ip_warnings(vm: Vm, reported: list[str] | None) -> list[str]:
    """A warning when the guest's verified addresses (reported) lack the static IP the
    inventory gives it: the user would be sent to an address nobody answers on."""
    static = static_address(vm)
    if static is None or reported is None or static in reported:
        return []
    has = ", ".join(reported) or "no IPv4 address"
    return [
        f"the guest does not have its static IP {static} (it reports {has}); "
        "see /var/log/cloud-init.log in the VM"
    ]


def vm_access(session: Session, state: VmState, vmid: int, report: GuestReport | None) -> Access:
    """Address, endpoint and way in: the address from the guest's report (its static IP
    when it has that one), the inventory's static IP, or one agent read when the VM runs
    (a converged re-run too)."""
    vm = session.inv.vms[state.desired.name]
    static = static_address(vm)
    reported = report.addresses if report else []
    address = static if static in reported else (reported[0] if reported else static)
    started = any(a.kind == "start" for a in state.plan.actions)
    if address is None and report is None and (state.running or started):
        client = session.client(state.desired.host_name)
        address = guest_address(client, state.desired.node, vmid)
    return access_for(vm, vmid, address)
