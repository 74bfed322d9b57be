"""Compare a VM's actual Proxmox config with the desired one, key by key, semantically.

Literal string comparison gives perpetual diffs (`agent: enabled=1` vs `1`, a MAC in
net0, key order in hostpci), so each managed key has its own notion of "same".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from provision.plan.desired import MANAGED_TAG
from provision.plan.model import Change
from provision.pve.pci import GpuRef, names_any, normalize_hostpci
from provision.pve.vmconfig import NIC_MODELS, parse_property_string

TRUE = {"1", "on", "yes", "true"}


def config_changes(
    desired: dict[str, str],
    actual: dict[str, Any],
    *,
    gpus: Iterable[GpuRef] = (),
    drop: Iterable[str] = (),
) -> list[Change]:
    """Changes that turn actual into desired; values are ready to send to Proxmox.

    gpus are every inventory GPU: an actual hostpciN naming (any function of) one of them
    that the VM should not have is deleted. The keys in drop (ones aihost set that the VM
    no longer gets) are deleted when the VM has them.
    """
    refs = list(gpus)
    changes: list[Change] = []
    for key, want in desired.items():
        raw = actual.get(key)
        have = None if raw is None else str(raw)
        new = _wanted_value(key, want, have)
        if new is not None:
            changes.append(Change(key, have, new))
    for key, have in sorted(actual.items()):
        have = str(have)
        managed_gpu = re.fullmatch(r"hostpci\d+", key) and key not in desired
        if (managed_gpu and names_any(have, refs)) or (key in drop and key not in desired):
            changes.append(Change(key, have, None))
    return changes


def _wanted_value(key: str, want: str, have: str | None) -> str | None:
    """None when have already satisfies want; else the value to write."""
    if key == "efidisk0":
        return want if have is None else None
    if have is None:
        return want
    if key == "tags":
        tags = [t for t in re.split(r"[;, ]+", have) if t]
        return None if MANAGED_TAG in tags else ";".join([*tags, MANAGED_TAG])
    if key == "net0":
        return _net0(want, have)
    same = _SAME.get(key, _exact)
    return None if same(want, have) else want


def _exact(want: str, have: str) -> bool:
    return want == have


def _default_key(name: str) -> Callable[[str, str], bool]:
    def same(want: str, have: str) -> bool:
        return parse_property_string(want, name).get(name) == parse_property_string(have, name).get(
            name
        )

    return same


def _truthy(name: str) -> Callable[[str, str], bool]:
    def same(want: str, have: str) -> bool:
        w = parse_property_string(want, name).get(name, "0").lower() in TRUE
        h = parse_property_string(have, name).get(name, "0").lower() in TRUE
        return w == h

    return same


def _machine(want: str, have: str) -> bool:
    kind = parse_property_string(have, "type").get("type", "")
    return kind == want or kind.startswith(f"pc-{want}-")


def _props(want: str, have: str) -> bool:
    return parse_property_string(want) == parse_property_string(have)


def _ide2(want: str, have: str) -> bool:
    """Proxmox's cloud-init drive (any storage) or, for ISO delivery, the same ISO volume."""
    have_volume = have.split(",")[0]
    if want.split(",")[0].endswith(":cloudinit"):
        return "cloudinit" in have_volume
    return have_volume == want.split(",")[0] and "media=cdrom" in have


def _sshkeys(want: str, have: str) -> bool:
    def keys(value: str) -> list[str]:
        return [k.strip() for k in unquote(value).splitlines() if k.strip()]

    return keys(want) == keys(have)


def _hostpci(want: str, have: str) -> bool:
    return normalize_hostpci(want) == normalize_hostpci(have)


def _net0(want: str, have: str) -> str | None:
    """Compare model, bridge and VLAN; keep the existing MAC address when rewriting,
    unless want names one (a new VM's, which its ISO's network-config matches)."""
    w = parse_property_string(want)
    h = parse_property_string(have)
    have_model = next((m for m in NIC_MODELS if m in h), None)
    want_model = next(m for m in NIC_MODELS if m in w)
    mac = h.get(have_model) if have_model else None
    want_mac = w.get(want_model) or None
    same = (
        have_model == want_model
        and h.get("bridge") == w.get("bridge")
        and h.get("tag") == w.get("tag")
        and (want_mac is None or (mac or "").lower() == want_mac.lower())
    )
    if same:
        return None
    if want_mac is not None:
        return want
    head = f"{want_model}={mac}" if mac else want_model
    rest = ",".join(f"{k}={v}" for k, v in w.items() if k != want_model)
    return f"{head},{rest}"


_SAME: dict[str, Callable[[str, str], bool]] = {
    "machine": _machine,
    "cpu": _default_key("cputype"),
    "agent": _truthy("enabled"),
    "memory": _default_key("current"),
    "cores": _exact,
    "ide2": _ide2,
    "ipconfig0": _props,
    "cicustom": _props,
    "sshkeys": _sshkeys,
}
for _index in range(16):
    _SAME[f"hostpci{_index}"] = _hostpci
