"""A running guest still on an older instance than its VM's config names.

`vm up --reprovision` writes the new generation into the description, and the new
meta-data (instance-id aihost-NAME-gN) into the snippet or ISO, then restarts the VM.
Those writes take effect at once (the description and cicustom are fast-plugged by
qemu-server `vmconfig_hotplug_pending`, a CD-ROM's medium is changed live), so when the
restart fails while the VM runs on (the reboot task ends with an error), nothing is left
in [PENDING] and a re-run would find the config converged while the guest never booted
the new instance. Only the guest can tell: its first-boot state file names the instance it
runs. It is read (one guest-agent call) for a running VM past its first generation.
"""

from __future__ import annotations

from typing import Any

from provision.delivery.generation import instance_id
from provision.errors import AihostError
from provision.guest.agent import GuestAgent
from provision.guest.firstboot import read_state
from provision.plan.vmplan import Actual
from provision.pve.api import Api
from provision.pve.cluster import VmInfo
from provision.pve.node import Node
from provision.pve.vmconfig import is_true, parse_property_string


def stale_instance(client: Api, info: VmInfo | None, vm_name: str, actual: Actual) -> str | None:
    """The instance-id the running guest reports when it is not the one of the VM's
    generation; None when it is, when this run re-provisions anyway, or when it cannot be
    told (not running, first generation, no agent, no answer, no aihost state file)."""
    generation = actual.generation
    if info is None or info.status != "running" or actual.reprovision or generation < 2:
        return None
    if not _agent_on(actual.config):
        return None
    try:
        state = read_state(GuestAgent(Node(client, info.node).vm(info.vmid)))
    except AihostError:
        return None
    running = state.instance_id if state is not None else None
    return running if running and running != instance_id(vm_name, generation) else None


def _agent_on(config: dict[str, Any]) -> bool:
    """The VM's `agent` option enables the guest agent (its default key `enabled`)."""
    return is_true(parse_property_string(str(config.get("agent", "0")), "enabled").get("enabled"))
