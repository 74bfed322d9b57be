"""Check one parameter value against a Proxmox API schema entry (used by apischema).

Mirrors pve-common's JSONSchema.pm as far as a request validator needs: type checks as
done on the wire ("1" is an integer, top-level booleans are "0"/"1"), enum, pattern
(Perl regexes, anchored, so re.fullmatch), min/max, min/maxLength, `requires`, named
formats and property strings (`parse_property_string`: comma split, `k=v` pairs, one bare
value for the `default_key`, `alias`/`keyAlias`, no duplicate or unknown keys). The named
property-string formats the schema only names come from ../shared/pve/formats.json,
restricted to the sub-keys the parameter's `typetext` lists (so PVE 8.4 refuses
hostpci `driver=`). Named formats with no known rule are accepted.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import Any

Errors = dict[str, str]

_BOOL_WORDS = {"1": True, "on": True, "yes": True, "true": True}
_BOOL_WORDS.update({"0": False, "off": False, "no": False, "false": False})
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TYPETEXT_KEY = re.compile(r"(?:^|[\[,])([A-Za-z0-9_.-]+)=")
_TYPETEXT_DEFAULT = re.compile(r"\[([A-Za-z0-9_.-]+)=\]")
_PERL_FLAGS = re.compile(r"\(\?\^([a-z]*):")
_IPV4_OCTET = r"(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"
_IPV4 = re.compile(rf"{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}")
_TAG = re.compile(r"[a-z0-9_][a-z0-9_\-+.]*", re.IGNORECASE)
_HOTPLUG = {"network", "disk", "cpu", "memory", "usb", "cloudinit"}
_CONTENT = {"images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"}


@functools.cache
def perl_regex(pattern: str) -> re.Pattern[str]:
    """Compile a schema pattern: Perl `(?^:`/`(?^i:` groups become `(?:`/`(?i:`."""
    return re.compile(_PERL_FLAGS.sub(lambda m: f"(?{m.group(1)}:", pattern))


def split_list(value: str) -> list[str]:
    """pve-common's split_list: items separated by commas, semicolons, spaces, NULs."""
    return [item for item in re.split(r"[,;\s\0]+", value) if item]


def _is_ipv4(v: str) -> bool:
    return _IPV4.fullmatch(v) is not None


def _is_ipv6(v: str) -> bool:
    try:
        ipaddress.IPv6Address(v)
    except ValueError:
        return False
    return True


def _cidr(v: str, ip_ok: Callable[[str], bool], bits: int) -> bool:
    addr, sep, mask = v.partition("/")
    return bool(sep) and ip_ok(addr) and mask.isdigit() and int(mask) <= bits


def _cidr_any(v: str) -> bool:
    return _cidr(v, _is_ipv4, 32) or _cidr(v, _is_ipv6, 128)


def _volume_or_path(v: str) -> bool:
    if v in ("none", "cdrom") or v.startswith("/"):
        return True
    return perl_regex(r"[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]:.+").fullmatch(v) is not None


def _hotplug(v: str) -> bool:
    return v in ("0", "1") or all(item in _HOTPLUG for item in v.split(","))


def _phys_bits(v: str) -> bool:
    return v == "host" or (v.isdigit() and 8 <= int(v) <= 64)


# Named formats verified by code in Proxmox (pve-common, qemu-server, pve-storage).
FORMAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "ipv4": _is_ipv4,
    "ipv6": _is_ipv6,
    "ip": lambda v: _is_ipv4(v) or _is_ipv6(v),
    "CIDRv4": lambda v: _cidr(v, _is_ipv4, 32),
    "CIDRv6": lambda v: _cidr(v, _is_ipv6, 128),
    "CIDR": _cidr_any,
    "IPorCIDR": lambda v: _is_ipv4(v) or _is_ipv6(v) or _cidr_any(v),
    "pve-ipv4-config": lambda v: v in ("dhcp", "manual") or _cidr(v, _is_ipv4, 32),
    "pve-ipv6-config": lambda v: v in ("auto", "dhcp", "manual") or _cidr(v, _is_ipv6, 128),
    "mac-addr": lambda v: (
        re.fullmatch(r"[a-f0-9][02468ace](?::[a-f0-9]{2}){5}", v, re.I) is not None
    ),
    "pve-tag-list": lambda v: all(_TAG.fullmatch(t) for t in re.split(r"[;, ]+", v) if t),
    "pve-hotplug-features": _hotplug,
    "disk-size": lambda v: re.fullmatch(r"\d+(?:\.\d+)?[KMGT]?", v) is not None,
    "pve-volume-id-or-qm-path": _volume_or_path,
    "pve-volume-id-or-absolute-path": _volume_or_path,
    "pve-qm-bootdev-list": lambda v: all(
        re.fullmatch(r"[a-z]+\d+", d) for d in v.rstrip(";").split(";")
    ),
    "pve-phys-bits": _phys_bits,
    "pve-bridge-id": lambda v: re.fullmatch(r"[-_.\w]+", v) is not None,
    "pve-poolid": lambda v: re.fullmatch(r"[A-Za-z0-9_\-/]+", v) is not None,
    "pve-storage-content": lambda v: v in _CONTENT,
    "pve-vmid": lambda v: re.fullmatch(r"[1-9][0-9]{2,8}", v) is not None,
}


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
        problem = _constraint_problem(schema, kind, text)
        if problem:
            return {name: problem}
        fmt = schema.get("format")
        if kind == "string" and fmt is not None:
            return self.check_format(name, fmt, text, schema.get("typetext", ""))
        return {}

    def check_format(self, name: str, fmt: Any, text: str, typetext: str = "") -> Errors:
        """Errors of a string value against a format (dict = property string, or a name)."""
        if isinstance(fmt, dict):
            return self.check_property_string(name, fmt, text)
        if fmt in self.hash_formats or (
            not _is_simple_name(fmt) and _TYPETEXT_KEY.search(typetext)
        ):
            sub = self._restrict(fmt, typetext)
            errors = self.check_property_string(name, sub, text)
            if not errors and fmt == "pve-qm-hostpci":
                errors = _hostpci_rules(name, text, sub)
            return errors
        if not self._simple_ok(fmt, text):
            return {name: f"value does not match the format '{fmt}'"}
        return {}

    def _simple_ok(self, fmt: str, text: str) -> bool:
        if fmt in FORMAT_CHECKS:
            return FORMAT_CHECKS[fmt](text)
        if fmt in self.simple_patterns:
            return perl_regex(self.simple_patterns[fmt]).fullmatch(text) is not None
        if fmt.endswith("-opt"):
            return text == "" or self._simple_ok(fmt[:-4], text)
        if fmt.endswith("-list") and fmt != "pve-tag-list":
            return all(self._simple_ok(fmt[:-5], item) for item in split_list(text))
        return True  # a named format we have no rule for: accepted

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
        for part in text.split(","):
            if not part.strip():
                continue
            key, sep, val = part.partition("=")
            if sep and key and val:
                if key in values:
                    return _invalid(name, f"duplicate key in comma-separated list property: {key}")
                schema = fmt.get(key)
                if schema and "alias" in schema:
                    if "keyAlias" in schema:
                        values[schema["keyAlias"]] = key
                    key, schema = schema["alias"], fmt.get(schema["alias"])
                if not schema:
                    return _invalid(name, f"invalid key in comma-separated list property: {key}")
                values[key] = val
            elif not sep:
                if default_key is not None:
                    return _invalid(
                        name, f"duplicate key in comma-separated list property: {default_key}"
                    )
                default_key = next((k for k, v in fmt.items() if v.get("default_key")), None)
                if default_key is None:
                    return _invalid(
                        name, "value without key, but schema does not define a default key"
                    )
                if default_key in values:
                    return _invalid(
                        name, f"duplicate key in comma-separated list property: {default_key}"
                    )
                values[default_key] = part
            else:
                return _invalid(name, "missing key in comma-separated list property")
        return self.check_object(name, fmt, values, in_prop=True)

    def check_object(
        self, prefix: str, props: dict[str, Any], values: dict[str, Any], *, in_prop: bool = False
    ) -> Errors:
        """Missing non-optional keys, `requires`, and each present value's checks."""
        errors: Errors = {}
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
                errors[join(required)] = f"missing property - '{join(key)}' requires this property"
        return errors


def _invalid(name: str, reason: str) -> Errors:
    return {name: f"invalid format - {reason}"}


def _is_simple_name(fmt: str) -> bool:
    return fmt in FORMAT_CHECKS or fmt.endswith("-list") or fmt.endswith("-opt")


def _wire_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _type_problem(kind: str, text: str, in_prop: bool) -> str | None:
    if kind == "boolean":
        ok = text.lower() in _BOOL_WORDS if in_prop else text in ("0", "1")
    elif kind == "integer":
        ok = _INTEGER.fullmatch(text) is not None
    elif kind == "number":
        ok = _NUMBER.fullmatch(text) is not None
    else:
        ok = True
    return None if ok else f"type check ('{kind}') failed - got '{text}'"


def _constraint_problem(schema: dict[str, Any], kind: str, text: str) -> str | None:
    enum = schema.get("enum")
    if enum is not None and text not in [str(e) for e in enum]:
        return (
            f"value '{text}' does not have a value in the enumeration '{', '.join(map(str, enum))}'"
        )
    if kind in ("integer", "number"):
        number = float(text)
        if "minimum" in schema and number < float(schema["minimum"]):
            return f"value must have a minimum value of {schema['minimum']}"
        if "maximum" in schema and number > float(schema["maximum"]):
            return f"value must have a maximum value of {schema['maximum']}"
        return None
    if "maxLength" in schema and len(text) > int(schema["maxLength"]):
        return f"value may only be {schema['maxLength']} characters long"
    if "minLength" in schema and len(text) < int(schema["minLength"]):
        return f"value must be at least {schema['minLength']} characters long"
    pattern = schema.get("pattern")
    if pattern is not None and perl_regex(pattern).fullmatch(text) is None:
        return "value does not match the regex pattern"
    return None


def _hostpci_rules(name: str, text: str, fmt: dict[str, Any]) -> Errors:
    """qemu-server parse_hostpci: exactly one of `host` (maybe as bare value) and `mapping`."""
    keys = {p.partition("=")[0] if "=" in p else "host" for p in text.split(",") if p.strip()}
    chosen = keys & {"host", "mapping"}
    if len(chosen) == 1 or "host" not in fmt:
        return {}
    if chosen:
        return {name: "invalid format - 'host' and 'mapping' cannot both be set"}
    return {name: "invalid format - either 'host' or 'mapping' must be set"}
