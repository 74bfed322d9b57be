"""Pure functions on Proxmox VM config values: property strings, flags, memory, timeouts.

Property-string rules (pve-common JSONSchema.pm parse_property_string, see
../shared/pve/formats.json): split on ',', `key=value` pairs, at most one bare value
which belongs to the format's default key; booleans accept 1|0|on|off|yes|no|true|false.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

TRUE_WORDS = frozenset({"1", "on", "yes", "true"})
FALSE_WORDS = frozenset({"0", "off", "no", "false"})
# netN models aihost writes or reads (the model's key carries the MAC: `virtio=BC:24:11:..`)
NIC_MODELS = ("virtio", "e1000", "e1000e", "rtl8139", "vmxnet3")


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


def with_pending(items: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """GET .../pending's answer as (the config with pending changes applied, the keys
    Proxmox holds in [PENDING]).

    qemu-server's `vm_pending` returns pve-guest-common GuestHelpers.pm
    `config_with_pending_array` of `load_config`: one item per scalar key of the config
    file (`digest`, the file's SHA-1, among them) with its current `value`, its `pending`
    value and `delete` (1, or 2 forced) when a change waits for the next start. The first
    element is what `vm_config` (GET .../config, `current` 0) returns:
    `load_current_config` sets each pending value and drops each pending deletion.
    """
    config: dict[str, Any] = {}
    pending = set()
    for item in items:
        key = str(item["key"])
        if item.get("delete"):
            pending.add(key)
        elif "pending" in item:
            config[key] = item["pending"]
            pending.add(key)
        elif "value" in item:
            config[key] = item["value"]
    return config, tuple(sorted(pending))
