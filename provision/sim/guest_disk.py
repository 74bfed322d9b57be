"""What a simulated VM's disk has baked into it (part of the guest MODEL).

`aihost template bake` boots a VM with bake user-data: its aihost-firstboot installs
the driver, CUDA and the runtime, copies /etc/aihost/bake.json to /etc/aihost/baked.json,
runs `cloud-init clean` and cloud-init's power_state powers the VM off. The model keeps
that file on the VM record as `vm["disk"]["baked"]`; a clone copies it, as Proxmox
copies (or, linked, shares) the disk. A VM of such a disk skips the baked phases of its
first boot when its scripts' `aihost-state baked KEY=VALUE` check holds
(provision.sim.guest_state).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from provision.sim.guest_timeline import timeline
from provision.sim.guest_userdata import CloudConfig, parse_user_data
from provision.sim.state import World

BAKE_SPEC = "/etc/aihost/bake.json"
FIRSTBOOT = "/usr/local/sbin/aihost-firstboot"
_CHECK = r"aihost-state baked ([^;\n]*); then\n\s*/usr/local/sbin/aihost-state set {} skipped"


def bake_spec(cloud: CloudConfig) -> dict[str, Any] | None:
    """The baked.json a bake user-data records, or None when the user-data is no bake
    (its first boot must be aihost's bake: it copies bake.json and cleans cloud-init)."""
    firstboot = cloud.files.get(FIRSTBOOT, "")
    if not cloud.valid or BAKE_SPEC not in cloud.files or "cloud-init clean" not in firstboot:
        return None
    try:
        spec = json.loads(cloud.files[BAKE_SPEC])
    except ValueError:
        return None  # `install` copies it, but aihost-state cannot read it: nothing matches
    return spec if isinstance(spec, dict) else None


def baked_record(vm: dict[str, Any]) -> dict[str, Any] | None:
    """/etc/aihost/baked.json of the VM's disk, or None."""
    baked = (vm.get("disk") or {}).get("baked")
    return baked if isinstance(baked, dict) else None


def baked_phases(vm: dict[str, Any]) -> frozenset[str]:
    """The first-boot phases the VM's disk already has done (driver, reboot, runtime)."""
    record = baked_record(vm) or {}
    return frozenset(str(p) for p in record.get("phases") or [])


def skips(script: str, phase: str, baked: dict[str, Any] | None) -> bool:
    """True when the script records phase as skipped because its `aihost-state baked
    KEY=VALUE...` check holds for the disk's baked.json (aihost-state.py `baked`)."""
    match = re.search(_CHECK.format(re.escape(phase)), script)
    if baked is None or match is None or phase not in (baked.get("phases") or []):
        return False
    for pair in match.group(1).split():
        key, _, value = pair.partition("=")
        have = baked.get(key)
        shown = json.dumps(have) if isinstance(have, bool) else str(have)
        if have is None or shown != value:
            return False
    return True


def bake_seconds(spec: dict[str, Any], durations: Mapping[str, float]) -> float:
    """How long a bake's first boot runs before it powers off: boot, packages, then the
    driver (with its DKMS build and CUDA), the reboot and the runtime's install, as the
    guest timeline times them for a VM (provision.sim.guest_timeline); no models."""
    runtime = str(spec.get("runtime") or "none")
    line = timeline(
        durations,
        driver=bool(spec.get("driver")),
        cuda=bool(spec.get("cuda")),
        runtime=None if runtime == "none" else runtime,
    )
    installs = ("driver", "reboot", "runtime")
    return line.agent_from + sum(s.end - s.start for s in line.spans if s.phase in installs)


def power_off_bakes(world: World, now: float, durations: Mapping[str, float]) -> None:
    """Bake VMs whose first boot has run (bake_seconds) power themselves off, their disk
    baked.

    A guest's own poweroff ends QEMU; qmeventd then runs `qm cleanup` (qemu-server
    src/PVE/CLI/qm.pm `cleanup`: no worker task; `vm_stop_cleanup` with
    $apply_pending_changes 0, so pending changes stay pending): the VM is stopped."""
    for vm in world["vms"].values():
        if vm["status"] != "running" or vm.get("started_at") is None:
            continue
        text = vm["guest"].get("user_data")
        if not text or BAKE_SPEC not in text:
            continue  # not a bake: no YAML parse on every request
        cloud = parse_user_data(text)
        spec = bake_spec(cloud)
        if spec is None or now - float(vm["started_at"]) < bake_seconds(spec, durations):
            continue
        vm.update(status="stopped", started_at=None, pci_in_use=[])
        # what dpkg has on the disk now: the bake's packages (a VM of it needs no apt)
        packages = sorted({*(vm.get("disk") or {}).get("packages", ()), *cloud.packages})
        vm["disk"] = {**(vm.get("disk") or {}), "baked": spec, "packages": packages}
