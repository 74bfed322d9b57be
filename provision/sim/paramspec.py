"""The compact notation of the simulator's own parameter declarations (provision.sim.params_*).

A declaration is a dict {name: entry}; a name ending in "?" is optional (Proxmox's
`optional => 1`). Entries are schema dicts in Proxmox's shape (pve-common JSONSchema:
`type`, `format`, `pattern`, `enum`, `minimum`, `maximum`, `maxLength`, `default_key`,
`alias`, `keyAlias`, `requires`, `items`), made by the short helpers below, so the
simulator's checks (provision.sim.apivalues) read them like apidoc.json's.
"""

from __future__ import annotations

from typing import Any

Entry = dict[str, Any]
_RENAMES = {
    "fmt": "format",
    "pat": "pattern",
    "maxlen": "maxLength",
    "minlen": "minLength",
    "dk": "default_key",
    "req": "requires",
    "key_alias": "keyAlias",
    "n_range": "_index_range",  # for name[n]: the n Proxmox expands the name to
}


def _entry(kind: str, extra: dict[str, Any]) -> Entry:
    out: Entry = {"type": kind}
    for key, value in extra.items():
        if value is not None:
            out[_RENAMES.get(key, key)] = value
    return out


def s(**extra: Any) -> Entry:
    """A string (fmt=, pat=, maxlen=, minlen=, dk=, req=, alias=, key_alias=, n_range=)."""
    return _entry("string", extra)


def e(words: str, **extra: Any) -> Entry:
    """A string enumeration, values separated by spaces."""
    return _entry("string", {"enum": words.split(), **extra})


def i(lo: int | None = None, hi: int | None = None, **extra: Any) -> Entry:
    """An integer with optional minimum/maximum."""
    return _entry("integer", {"minimum": lo, "maximum": hi, **extra})


def n(lo: float | None = None, hi: float | None = None, **extra: Any) -> Entry:
    """A number with optional minimum/maximum."""
    return _entry("number", {"minimum": lo, "maximum": hi, **extra})


def b(**extra: Any) -> Entry:
    """A boolean (0/1 at the top level; 1|0|on|off|yes|no|true|false in property strings)."""
    return _entry("boolean", extra)


def arr(items: Entry, **extra: Any) -> Entry:
    """An array of items (repeated form fields on the wire)."""
    return _entry("array", {"items": items, **extra})


def a(target: str, **extra: Any) -> Entry:
    """A property-string key that is an alias of another (e.g. net's `virtio=MAC`)."""
    return {"alias": target, **{_RENAMES.get(k, k): v for k, v in extra.items()}}


def props(entries: dict[str, Entry]) -> dict[str, Entry]:
    """Expand "name?" keys to name with optional=1 (a fresh dict per entry)."""
    out: dict[str, Entry] = {}
    for key, entry in entries.items():
        name, optional = (key[:-1], True) if key.endswith("?") else (key, False)
        out[name] = _expand({**entry, **({"optional": 1} if optional else {})})
    return out


def _expand(entry: Entry) -> Entry:
    fmt = entry.get("format")
    if isinstance(fmt, dict):
        entry["format"] = props(fmt)
    if isinstance(entry.get("items"), dict):
        entry["items"] = _expand(dict(entry["items"]))
    return entry
