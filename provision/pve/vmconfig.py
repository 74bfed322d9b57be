"""Pure functions on Proxmox VM config values: property strings and hostpci comparison.

Property-string rules (pve-common JSONSchema.pm parse_property_string, see
../shared/pve/formats.json): split on ',', `key=value` pairs, at most one bare value
which belongs to the format's default key; booleans accept 1|0|on|off|yes|no|true|false.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

TRUE_WORDS = frozenset({"1", "on", "yes", "true"})
FALSE_WORDS = frozenset({"0", "off", "no", "false"})

# hostpci sub-keys that are booleans, with Proxmox's defaults (formats.json pve-qm-hostpci).
_HOSTPCI_BOOL_DEFAULTS = {"rombar": "1", "pcie": "0", "x-vga": "0", "legacy-igd": "0"}
_HOSTPCI_DEFAULTS = {"driver": "vfio"}
_HOSTPCI_HEX = ("vendor-id", "device-id", "sub-vendor-id", "sub-device-id")


def parse_property_string(value: str, default_key: str | None = None) -> dict[str, str]:
    """Split a property string into {key: value}.

    The first bare item (no '=') is stored under default_key; other bare items, or any when
    the format has no default key, are stored as {item: ""} (net0's `virtio` style), so
    nothing is lost. Empty items are skipped; a repeated key keeps its last value (Proxmox
    refuses such strings, so they only come from callers).
    """
    result: dict[str, str] = {}
    bare_taken = False
    for raw in str(value).split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep:
            if default_key is not None and not bare_taken:
                result[default_key] = item
                bare_taken = True
            else:
                result[item] = ""
            continue
        result[key.strip()] = val.strip()
    return result


def format_property_string(
    values: Mapping[str, object],
    default_key: str | None = None,
    order: Iterable[str] = (),
) -> str:
    """Join {key: value} into a property string (the inverse of parse_property_string).

    The default key's value comes first and bare; then the keys named in order, then the
    rest in their given order. None values are left out; booleans are written 1/0; an
    empty value is written as a bare key.
    """
    ordered: list[str] = []
    if default_key is not None and values.get(default_key) is not None:
        ordered.append(default_key)
    for key in order:
        if key in values and key not in ordered:
            ordered.append(key)
    ordered.extend(k for k in values if k not in ordered)
    parts: list[str] = []
    for key in ordered:
        raw = values[key]
        if raw is None:
            continue
        text = ("1" if raw else "0") if isinstance(raw, bool) else str(raw)
        if key == default_key:
            parts.append(text)
        elif text == "":
            parts.append(key)
        else:
            parts.append(f"{key}={text}")
    return ",".join(parts)


def normalize_bool(value: str) -> str:
    """A property-string boolean as '1' or '0' (other text is returned lower-cased)."""
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return "1"
    if lowered in FALSE_WORDS:
        return "0"
    return lowered


def normalize_pci_id(pci: str) -> str:
    """One host PCI id in the long form Proxmox and `lspci -D` print: 0000:01:00[.0].

    The function suffix is kept: `0000:01:00` passes all functions (GPU and its audio),
    `0000:01:00.0` only the first, so they are different settings (see hostpci_devices
    for "same card" questions).
    """
    text = pci.strip().lower()
    if text.count(":") == 1:
        text = f"0000:{text}"
    return text


def normalize_hostpci(value: str) -> str:
    """A canonical form of a hostpci value, for comparing semantically, not literally.

    Equal for: any key order, `host=` written or omitted, boolean spellings (pcie=on vs 1),
    values equal to Proxmox's defaults written or omitted (rombar=1, pcie=0, x-vga=0,
    legacy-igd=0, driver=vfio), ids with or without the 0000: domain, hex case.
    Alternatives separated by ';' keep their order. The result is a string: hashable, and
    itself a valid hostpci value.
    """
    props = parse_property_string(value, "host")
    canonical: dict[str, str] = {}
    for key, raw in props.items():
        if key == "host":
            canonical[key] = ";".join(normalize_pci_id(p) for p in raw.split(";") if p.strip())
        elif key in _HOSTPCI_BOOL_DEFAULTS:
            flag = normalize_bool(raw)
            if flag != _HOSTPCI_BOOL_DEFAULTS[key]:
                canonical[key] = flag
        elif key in _HOSTPCI_DEFAULTS:
            if raw.lower() != _HOSTPCI_DEFAULTS[key]:
                canonical[key] = raw.lower()
        elif key in _HOSTPCI_HEX:
            canonical[key] = raw.lower()
        else:
            canonical[key] = raw
    rest = {k: canonical[k] for k in sorted(canonical) if k != "host"}
    head = {"host": canonical["host"]} if "host" in canonical else {}
    return format_property_string({**head, **rest}, "host")


def hostpci_devices(value: str) -> frozenset[str]:
    """The PCI slots a raw hostpci value names (0000:01:00; functions dropped).

    For "does this entry use that card" questions, where 0000:01:00 and 0000:01:00.0 are
    the same GPU. A mapped entry (mapping=NAME) gives an empty set; see hostpci_mapping.
    """
    host = parse_property_string(value, "host").get("host", "")
    slots: set[str] = set()
    for pci in host.split(";"):
        if pci.strip():
            slots.add(normalize_pci_id(pci).split(".")[0])
    return frozenset(slots)


def hostpci_mapping(value: str) -> str | None:
    """The cluster mapping a hostpci value names, or None for a raw device."""
    return parse_property_string(value, "host").get("mapping")


def is_true(value: object) -> bool:
    """Proxmox's notion of a true flag (1, "1", "on", "yes", "true"; top-level or nested)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in TRUE_WORDS


def memory_mib(value: object) -> int:
    """A `memory` option's current size in MiB ("2048" or "current=2048"; 512 when unset),
    as qemu-server's Memory.pm `get_current_memory` reads it."""
    if value is None or str(value).strip() == "":
        return 512
    current = parse_property_string(str(value), "current").get("current", "512")
    return int(current) if current.isdigit() else 512


def config_aware_timeout(config: Mapping[str, object]) -> int:
    """qemu-server's default start timeout for a config (src/PVE/QemuServer/Helpers.pm
    `config_aware_timeout`, used by `vm_start` when no `timeout` is given): 30 s, or the
    memory in whole GiB when above 30 GiB; x4 with any hostpciN; at least 150 s with
    hugepages; plus 5 s per netN. (Its resume case, at least 300 s, does not apply to a
    start.) A start given a shorter timeout fails where Proxmox's own default would not."""
    memory = memory_mib(config.get("memory"))
    timeout = memory // 1024 if memory > 30720 else 30
    if any(re.fullmatch(r"hostpci\d+", key) for key in config):
        timeout *= 4
    if str(config.get("hugepages") or "0") != "0" and timeout < 150:
        timeout = 150
    return timeout + 5 * sum(1 for key in config if re.match(r"net\d+", key))
