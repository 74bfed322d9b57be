"""Check one parameter value against a Proxmox API schema entry (used by apischema).

Follows pve-common's JSONSchema.pm (`check_prop`, `check_type`, `check_format`,
`parse_property_string`, `check_object`): type checks as done on the wire ("1" is an
integer, top-level booleans are "0"/"1"), then format, pattern, maxLength, minLength,
the range (Perl numbers) and enum; property strings split on commas into `k=v` pairs
and one bare value for the `default_key`, with `alias`/`keyAlias`, no duplicate or
unknown keys, words as booleans; `-list` formats split as `split_list` does, `-opt`
formats skip false values. Regexes match as Perl's `m/^...$/` (see
provision.sim.pveformats). Named property-string formats come from the formats dict
given (the simulator's own, provision.sim.params_formats, or ../shared/pve/formats.json
in tests), restricted to the sub-keys the parameter's `typetext` lists (so PVE 8.4
refuses hostpci `driver=`). Named formats with no known rule are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from provision.sim.pveformats import (
    PVE_COMMON_FORMATS,
    Verifier,
    perl_fullmatch,
    perl_match,
    perl_number,
    split_list,
)

Errors = dict[str, str]

_BOOL = re.compile(r"(1|on|yes|true)|(0|off|no|false)", re.IGNORECASE)
_INTEGER = "[+-]?\\d+"  # is_integer
_NUMBER = "[+-]?(\\d+\\.\\d+|\\d+\\.|\\.\\d+|\\d+)([eE][+-]?\\d+)?"  # is_number
_PAIR = re.compile(r"([^=]+)=(.+)")
_DUPLICATE = "duplicate key in comma-separated list property: "
_NOT_DEFINED = (
    "property is not defined in schema and the schema does not allow additional properties"
)
_NO_DEFAULT = "value without key, but schema does not define a default key"
_TYPETEXT_KEY = re.compile(r"(?:^|[\[,])([A-Za-z0-9_.-]+)=")
_TYPETEXT_DEFAULT = re.compile(r"\[([A-Za-z0-9_.-]+)=\]")
_HOTPLUG = {"network", "disk", "cpu", "memory", "usb", "cloudinit"}
_CONTENT = {"images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"}
_VOLUME = "[a-zA-Z][a-zA-Z0-9\\-_.]*[a-zA-Z0-9]:.+"


def _volume_or_path(v: str) -> bool:
    return v in ("none", "cdrom") or v.startswith("/") or perl_match(_VOLUME, v)


def _hotplug(v: str) -> bool:
    return v in ("0", "1") or all(item in _HOTPLUG for item in v.split(","))


def _phys_bits(v: str) -> bool:
    return v == "host" or (v.isdigit() and 8 <= int(v) <= 64)


def _plain(name: str, ok: Callable[[str], bool], message: str = "") -> Verifier:
    text = message or f"value does not match the format '{name}'"
    return lambda v: None if ok(v) else text.format(v)


# Named formats verified by code in qemu-server, pve-storage and pve-access-control
# (approximations: tests/sim/test_pve_oracle.py lists them as not compared).
OTHER_FORMATS: dict[str, Verifier] = {
    "pve-hotplug-features": _plain("pve-hotplug-features", _hotplug),
    "pve-volume-id-or-qm-path": _plain("pve-volume-id-or-qm-path", _volume_or_path),
    "pve-volume-id-or-absolute-path": _plain("pve-volume-id-or-absolute-path", _volume_or_path),
    "pve-qm-bootdev": _plain("pve-qm-bootdev", lambda v: perl_match("[a-z]+\\d+", v)),
    "pve-phys-bits": _plain("pve-phys-bits", _phys_bits),
    "pve-poolid": _plain("pve-poolid", lambda v: perl_match("[A-Za-z0-9_\\-/]+", v)),
    "pve-storage-content": _plain("pve-storage-content", lambda v: v in _CONTENT),
    # pve-storage PVE/Storage.pm parse_volume_id
    "pve-volume-id": _plain(
        "pve-volume-id", lambda v: perl_match(_VOLUME, v), "unable to parse volume ID '{}'"
    ),
}
FORMAT_CHECKS: dict[str, Verifier] = {**PVE_COMMON_FORMATS, **OTHER_FORMATS}


class ValueChecker:
    """Checks values against schema entries; named formats from formats.json's data."""

    def __init__(self, formats: dict[str, Any] | None = None) -> None:
        formats = formats or {}
        self.hash_formats: dict[str, dict[str, Any]] = {
            name: {k: v for k, v in fmt.items() if not k.startswith("_")}
            for name, fmt in formats.items()
            if name.startswith("pve-") and isinstance(fmt, dict)
        }
        simple = formats.get("simple-formats", {})
        self.simple_patterns = {
            name: entry["pattern"]
            for name, entry in simple.items()
            if "pattern" in entry and name not in FORMAT_CHECKS and "<" not in entry["pattern"]
        }
        self._restricted: dict[tuple[str, str], dict[str, Any]] = {}

    def check(
        self, name: str, schema: dict[str, Any], value: Any, *, in_prop: bool = False
    ) -> Errors:
        """Errors ({path: message}) of one value; in_prop for values inside a property string."""
        kind = schema.get("type", "string")
        if isinstance(value, list) and kind != "array":
            return {name: f"type check ('{kind}') failed - got a list of {len(value)} values"}
        if kind == "array":
            items = value if isinstance(value, list) else [value]
            item_schema = schema.get("items", {})
            errors: Errors = {}
            for i, item in enumerate(items):
                errors.update(self.check(f"{name}[{i}]", item_schema, item))
            return errors
        if isinstance(value, dict):
            return {name: f"type check ('{kind}') failed - got an object"}
        text = _wire_text(value)
        problem = _type_problem(kind, text, in_prop)
        if problem:
            return {name: problem}
        fmt = schema.get("format")
        if fmt is not None:  # check_prop: format, pattern, lengths, range, enum
            errors = self.check_format(name, fmt, text, schema.get("typetext", ""))
            if errors:
                return errors
        problem = _constraint_problem(schema, text)
        return {name: problem} if problem else {}

    def check_format(self, name: str, fmt: Any, text: str, typetext: str = "") -> Errors:
        """Errors of a string value against a format (dict = property string, or a name)."""
        if isinstance(fmt, dict):
            return self.check_property_string(name, fmt, text)
        if fmt in self.hash_formats or (
            not _is_simple_name(fmt) and _TYPETEXT_KEY.search(typetext)
        ):
            return self.check_property_string(name, self._restrict(fmt, typetext), text)
        problem = self._format_problem(fmt, text)
        return {name: f"invalid format - {problem}"} if problem else {}

    def _format_problem(self, fmt: str, text: str) -> str | None:
        """check_format of a named format, as its die message: `NAME-list` checks each
        item of split_list, `NAME-opt` skips a false value ("" or "0")."""
        if fmt in FORMAT_CHECKS:
            return FORMAT_CHECKS[fmt](text)
        if fmt in self.simple_patterns:
            if perl_match(self.simple_patterns[fmt], text):
                return None
            return f"value does not match the format '{fmt}'"
        if fmt.endswith("-opt"):
            return None if text in ("", "0") else self._format_problem(fmt[:-4], text)
        if fmt.endswith("-list"):
            problems = (self._format_problem(fmt[:-5], item) for item in split_list(text))
            return next((p for p in problems if p), None)
        return None  # a named format we have no rule for: accepted

    def _restrict(self, fmt: str, typetext: str) -> dict[str, Any]:
        """The sub-keys of a named property-string format this API version lists."""
        cached = self._restricted.get((fmt, typetext))
        if cached is not None:
            return cached
        listed = set(_TYPETEXT_KEY.findall(typetext))
        known = self.hash_formats.get(fmt)
        if known is None:  # keys from the typetext only; values unchecked
            default = _TYPETEXT_DEFAULT.search(typetext)
            known = {k: {"type": "string", "optional": 1} for k in listed}
            if default and default.group(1) in known:
                known[default.group(1)]["default_key"] = 1
        elif listed:
            known = {k: v for k, v in known.items() if k in listed}
        self._restricted[(fmt, typetext)] = known
        return known

    def check_property_string(self, name: str, fmt: dict[str, Any], text: str) -> Errors:
        """parse_property_string + check_object of pve-common, as {path: message}."""
        values: dict[str, str] = {}
        default_key: str | None = None
        try:
            for part in text.split(","):
                if re.fullmatch(r"\s*", part):
                    continue
                pair = perl_fullmatch(_PAIR, part)
                if pair:
                    _put_pair(fmt, values, pair.group(1), pair.group(2))
                elif "=" in part:
                    raise ValueError("missing key in comma-separated list property")
                else:
                    if default_key is not None:
                        raise ValueError(_DUPLICATE + default_key)
                    default_key = next((k for k, v in fmt.items() if v.get("default_key")), None)
                    if default_key is None:
                        raise ValueError(_NO_DEFAULT)
                    if values.get(default_key, "0") != "0":  # Perl: `if (!$res->{$default_key})`
                        raise ValueError(_DUPLICATE + default_key)
                    values[default_key] = _prop_value(fmt[default_key], part)
        except ValueError as exc:
            return _invalid(name, str(exc))
        return self.check_object(name, fmt, values, in_prop=True)

    def check_object(
        self, prefix: str, props: dict[str, Any], values: dict[str, Any], *, in_prop: bool = False
    ) -> Errors:
        """Missing non-optional keys, `requires`, and each present value's checks."""
        errors: Errors = {
            (f"{prefix}.{k}" if prefix else k): _NOT_DEFINED for k in values if k not in props
        }
        join = (lambda k: f"{prefix}.{k}") if prefix else (lambda k: k)
        for key, schema in props.items():
            if "alias" in schema:
                continue
            if key not in values:
                if not schema.get("optional"):
                    errors[join(key)] = "property is missing and it is not optional"
                continue
            errors.update(self.check(join(key), schema, values[key], in_prop=in_prop))
            required = schema.get("requires")
            if isinstance(required, str) and required not in values:
                errors[join(required)] = f"missing property required by '{join(key)}'"
        return errors


def _invalid(name: str, reason: str) -> Errors:
    return {name: f"invalid format - {reason}"}


def _is_simple_name(fmt: str) -> bool:
    return fmt in FORMAT_CHECKS or fmt.endswith("-list") or fmt.endswith("-opt")


def _wire_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _put_pair(fmt: dict[str, Any], values: dict[str, str], key: str, value: str) -> None:
    """One `key=value` of parse_property_string (aliases and key aliases resolved)."""
    if key in values:
        raise ValueError(_DUPLICATE + key)
    schema = fmt.get(key)
    if schema and "alias" in schema:
        key_alias = schema.get("keyAlias")
        if key_alias:
            if key_alias in values:
                raise ValueError(f"key alias '{key_alias}' is already defined")
            values[key_alias] = key
        key, schema = schema["alias"], fmt.get(schema["alias"])
        if key in values:
            raise ValueError(f"key '{key}' is already defined (via alias)")
    # Perl autovivifies `$schema` in `$schema->{alias}`, so its "invalid key" never fires:
    # an unknown key is kept and check_object reports it as not defined in the schema.
    values[key] = _prop_value(schema or {}, value)


def _prop_value(schema: dict[str, Any], value: str) -> str:
    """parse_boolean for boolean keys (1|on|yes|true -> 1, 0|off|no|false -> 0)."""
    if schema.get("type") != "boolean":
        return value
    word = perl_fullmatch(_BOOL, value)
    if not word:
        return value
    return "1" if word.group(1) else "0"


def _type_problem(kind: str, text: str, in_prop: bool) -> str | None:
    """check_type: booleans are exactly "0"/"1" (property strings convert words first)."""
    if kind == "boolean":
        ok = text in ("0", "1")
    elif kind == "integer":
        ok = perl_match(_INTEGER, text)
    elif kind == "number":
        ok = perl_match(_NUMBER, text)
    else:
        ok = True
    return None if ok else f"type check ('{kind}') failed - got '{text}'"


def _constraint_problem(schema: dict[str, Any], text: str) -> str | None:
    """check_prop after the format: pattern, maxLength, minLength, range, enum."""
    pattern = schema.get("pattern")
    if pattern is not None and not perl_match(pattern, text):
        return "value does not match the regex pattern"
    if "maxLength" in schema and len(text) > int(schema["maxLength"]):
        return f"value may only be {schema['maxLength']} characters long"
    if "minLength" in schema and len(text) < int(schema["minLength"]):
        return f"value must be at least {schema['minLength']} characters long"
    if perl_match(_NUMBER, text):
        number = perl_number(text)
        if "maximum" in schema and number > float(schema["maximum"]):
            return f"value must have a maximum value of {schema['maximum']}"
        if "minimum" in schema and number < float(schema["minimum"]):
            return f"value must have a minimum value of {schema['minimum']}"
    enum = schema.get("enum")
    if enum is not None and text not in [str(e) for e in enum]:
        joined = ", ".join(map(str, enum))
        return f"value '{text}' does not have a value in the enumeration '{joined}'"
    return None
