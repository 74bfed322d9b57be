"""The provisioning generation recorded on the VM, which pins cloud-init's instance-id.

Without a meta-data file Proxmox derives the instance-id from the user-data, so any
edit re-runs first boot at the next start. aihost writes its own meta-data whose
instance-id changes only when the generation does (`vm up --reprovision`).
"""

from __future__ import annotations

import re

LINE = re.compile(r"^aihost-generation:\s*(\d+)\s*$", re.M)


def generation_of(description: str | None) -> int | None:
    """The generation written in a VM's description, if any."""
    match = LINE.search(description or "")
    return int(match.group(1)) if match else None


def with_generation(description: str | None, generation: int) -> str:
    """description with its generation line set (the user's own text is kept)."""
    text = LINE.sub("", description or "").rstrip("\n")
    line = f"aihost-generation: {generation}"
    return f"{text}\n{line}\n" if text.strip() else f"{line}\n"


def instance_id(vm_name: str, generation: int) -> str:
    """The NoCloud instance-id for a generation."""
    return f"aihost-{vm_name}-g{generation}"


def meta_data(vm_name: str, generation: int) -> str:
    """NoCloud meta-data pinning the instance-id and hostname."""
    return f"instance-id: {instance_id(vm_name, generation)}\nlocal-hostname: {vm_name}\n"
