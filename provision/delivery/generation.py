"""The provisioning generation recorded on the VM, which pins cloud-init's instance-id.

Without a meta-data file Proxmox derives the instance-id from the user-data, so any
edit re-runs first boot at the next start. aihost writes its own meta-data whose
instance-id changes only when the generation does (`vm up --reprovision`).

The description also records a digest of the user-data the generation was provisioned
with, so a later edit is known to be pending (not yet run by the guest) on every run
until the next re-provision, not only on the run that uploads it.
"""

from __future__ import annotations

import hashlib
import re

from provision.cloudinit.render import render_meta_data

LINE = re.compile(r"^aihost-generation:\s*(\d+)(?:\s+user-data=([0-9a-f]+))?\s*$", re.M)
# The description a new VM gets in its clone/create request, before anything else is
# written: the VM is aihost's from its first moment (a run killed before the config write
# that tags it leaves a VM the next run finishes instead of refusing it as unmanaged).
CREATING = re.compile(r"^aihost-creating: op=([0-9a-f]+) vm=(\S+)(?: by=(\S+))?\s*$", re.M)
# The line a run making a new VM records its claim to the name in (provision.vmops.twins)
CLAIM = re.compile(r"^aihost-claim: .*$", re.M)


def creation_mark(op: str, vm_name: str, owner: str | None = None) -> str:
    """The description line marking a VM aihost is creating (operation op, by owner:
    user@host:pid of the creating process)."""
    return f"aihost-creating: op={op} vm={vm_name}" + (f" by={owner}" if owner else "")


def creator_of(description: str | None, vm_name: str) -> str | None:
    """The owner recorded in the creation mark of vm_name (None without one)."""
    found = [m.group(3) for m in CREATING.finditer(description or "") if m.group(2) == vm_name]
    return found[0] if found else None


def being_created(description: str | None, vm_name: str) -> bool:
    """True when description marks a VM aihost began creating as vm_name."""
    return any(m.group(2) == vm_name for m in CREATING.finditer(description or ""))


def generation_of(description: str | None) -> int | None:
    """The generation written in a VM's description, if any."""
    match = LINE.search(description or "")
    return int(match.group(1)) if match else None


def provisioned_digest(description: str | None) -> str | None:
    """The digest of the user-data the recorded generation was provisioned with, if any."""
    match = LINE.search(description or "")
    return match.group(2) if match else None


def user_data_digest(user_data: bytes) -> str:
    """Short SHA-256 of a user-data document, as recorded in the description."""
    return hashlib.sha256(user_data).hexdigest()[:16]


def with_generation(description: str | None, generation: int, digest: str | None = None) -> str:
    """description with its generation line set (the user's own text is kept)."""
    text = CLAIM.sub("", CREATING.sub("", LINE.sub("", description or ""))).rstrip("\n")
    line = f"aihost-generation: {generation}" + (f" user-data={digest}" if digest else "")
    return f"{text}\n{line}\n" if text.strip() else f"{line}\n"


def instance_id(vm_name: str, generation: int) -> str:
    """The NoCloud instance-id for a generation."""
    return f"aihost-{vm_name}-g{generation}"


def meta_data(vm_name: str, generation: int) -> str:
    """NoCloud meta-data pinning the instance-id and hostname (written by the renderer)."""
    return render_meta_data(vm_name, instance_id(vm_name, generation))
