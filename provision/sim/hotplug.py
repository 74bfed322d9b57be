"""Which change a running VM takes at once, as qemu-server decides it.

qemu-server src/PVE/QemuServer.pm `vmconfig_hotplug_pending` (qemu-server e6352be6),
called by `update_vm_api` once a running VM's changes are written to [PENDING]: the
`$fast_plug_option` keys first, then each pending deletion and each pending value
through its own branch; a branch that dies "skip" leaves the key pending until the next
start. The hotplug features are those of the config's current `hotplug`
(`parse_hotplug_features`: '1' or unset is the default `network,disk,usb`, '0' none).

What the simulator follows:
- `netN`: `vmconfig_update_net`. A change of model, MAC, queues or MTU, or a value
  without a bridge, unplugs and plugs the NIC (needs `network`); a change of bridge,
  tag, trunks, firewall, rate or link_down alone is made to the tap device (always); a
  new NIC is plugged (needs `network`). A deletion unplugs it (needs `network`).
- `agent`: `vmconfig_update_agent`. Pending unless the VM has an agent setting and only
  `fstrim_cloned_disks` differs; a deletion stays pending.
- `balloon`: live unless the balloon device is turned on or off (0); a deletion is live
  unless the current value is 0.
- `cpuunits`, `cpulimit`: the VM's cgroup, always live.
- `tablet`: needs `usb`.
- a CD-ROM drive given another medium (an ISO or none): `vmconfig_update_disk` changes
  it live (`change_medium`), whatever the hot-plug features.
- `hotplug`: live unless its new or current value names memory or cpu.
Simplified: `memory` and `vcpus` (need `memory`/`cpu` hot-plug, with DIMM and NUMA
checks the simulator does not model), `usbN`, and every other drive change (disk
hot-plug and unplug, unused-disk registration, throttling, the cloud-init drive) stay
pending; hot-plug errors ("hotplug problem - ...") are not raised.
"""

from __future__ import annotations

import re

from provision.sim.cicustom import is_cloudinit_volume
from provision.sim.fixture import DISK_KEY
from provision.sim.guest_net import property_flags
from provision.sim.netnorm import NET_KEY, NIC_MODELS
from provision.sim.pveformats import split_list

DEFAULT_FEATURES = "network,disk,usb"
# vmconfig_update_net: keys whose change needs the NIC unplugged and plugged again
_REPLUG_STRINGS = ("model", "macaddr")
_REPLUG_NUMBERS = ("queues", "mtu")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def features(hotplug: str | None) -> set[str]:
    """parse_hotplug_features of a config's `hotplug` value."""
    value = "1" if hotplug is None else str(hotplug)
    if value == "0":
        return set()
    if value == "1":
        value = DEFAULT_FEATURES
    return set(split_list(value))


def takes_live(config: dict[str, str], key: str, value: str | None) -> bool:
    """Whether a running VM with this current config takes key's new value (None: its
    deletion) at once; False: it stays in [PENDING]."""
    have = features(config.get("hotplug"))
    old = config.get(key)
    if key == "hotplug":
        return not re.search("memory|cpu", f"{value or ''} {old or ''}")
    if NET_KEY.fullmatch(key):
        if value is None or old is None:
            return "network" in have
        return "network" in have or not _needs_replug(_parse_net(old), _parse_net(value))
    if key == "agent":
        return value is not None and _agent_change_is_live(old, value)
    if key == "balloon":
        if value is None:
            return old is None or _number(old) != 0
        return _balloon_on(old) == _balloon_on(value)
    if key in ("cpuunits", "cpulimit"):
        return True
    if key == "tablet":
        return "usb" in have
    if DISK_KEY.fullmatch(key):
        return value is not None and old is not None and _medium(old) and _medium(value)
    return False


def _medium(value: str) -> bool:
    """A CD-ROM drive with an image or none, not the cloud-init drive (drive_is_cdrom
    without drive_is_cloudinit)."""
    parts = value.split(",")
    return "media=cdrom" in parts[1:] and not is_cloudinit_volume(parts[0])


def _parse_net(value: str) -> dict[str, str]:
    """parse_net's fields of a stored netN value (`model=MAC,key=value,...`, as
    provision.sim.netnorm stores it), the MAC upper-case."""
    fields: dict[str, str] = {}
    for part in value.split(","):
        name, _sep, val = part.partition("=")
        if name in NIC_MODELS:
            fields["model"], fields["macaddr"] = name, val.upper()
        elif name:
            fields[name] = val.upper() if name == "macaddr" else val
    return fields


def _needs_replug(old: dict[str, str], new: dict[str, str]) -> bool:
    """The bridge/nat mode change branch of vmconfig_update_net."""
    return (
        any(old.get(k) != new.get(k) for k in _REPLUG_STRINGS)
        or any(_number(old.get(k)) != _number(new.get(k)) for k in _REPLUG_NUMBERS)
        or not (old.get("bridge") and new.get("bridge"))
    )


def _agent_change_is_live(old: str | None, new: str) -> bool:
    """vmconfig_update_agent: only fstrim_cloned_disks is hot-pluggable, and only on a VM
    whose agent setting is there and true to Perl ("0" is not)."""
    if not old or old == "0":
        return False
    before, after = _agent(old), _agent(new)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    return changed <= {"fstrim_cloned_disks"}


def _agent(value: str) -> dict[str, str]:
    """parse_guest_agent: the property string, `enabled` its default key, booleans as 1/0."""
    return {k: _boolean(v) for k, v in property_flags(value, "enabled").items()}


def _balloon_on(value: str | None) -> bool:
    """The balloon device is there unless balloon is 0."""
    return value is None or _number(value) != 0


def _boolean(value: str) -> str:
    """A boolean field as check_type stores it (1 or 0); any other value unchanged."""
    low = value.lower()
    return "1" if low in _TRUE else "0" if low in _FALSE else value


def _number(value: str | None) -> float | None:
    """safe_num_ne's view of a value: a number, or None when unset."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
