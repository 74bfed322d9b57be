"""The simulator's own parameter declarations stay equal to Proxmox's API schema.

provision.sim.params_routes declares, for every route the simulator serves, the
parameters Proxmox declares there (name, type, format, pattern, enum, bounds, optional,
default key, aliases, requires); provision.sim.params_formats declares the named formats.
Here they are compared with ../shared/pve/apidoc.json (PVE 9.1, exactly), with
apidoc-8.4.json (the known 8.4 -> 9.1 delta, exactly) and with formats.json. A route
added to a ROUTES list without a declaration, or a declaration that drifts, fails here.
Without the files these tests skip, unless AIHOST_REQUIRE_SCHEMA=1.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from provision.sim.apischema import ApiSchema, default_shared_dir
from provision.sim.app import ROUTES
from provision.sim.params_check import sim_schema
from provision.sim.params_formats import SIM_FORMATS
from provision.sim.params_routes import DECLARED

SERVED = sorted({(m, t) for m, t, _, _ in ROUTES} | {("POST", "/access/ticket")})
_KEEP = ("type", "format", "pattern", "enum", "minimum", "maximum", "maxLength", "minLength")
_KEEP += ("default_key", "alias", "keyAlias", "requires", "items", "optional")
_Q = "/nodes/{node}/qemu"
_CONFIG = {("POST", _Q), ("PUT", f"{_Q}/{{vmid}}/config"), ("POST", f"{_Q}/{{vmid}}/config")}
_DRIVE_GEOMETRY = {
    f"{d}.{k}"
    for d in ("ide[n]", "sata[n]", "scsi[n]", "virtio[n]")
    for k in ("cyls", "heads", "secs", "trans")
}
# PVE 8.4 -> 9.1 for the served routes: what 9.1 added (the simulator accepts it, an
# 8.4 node refuses it) and what 9.1 removed (both refuse it now).
_ADDED_IN_9 = {
    "allow-ksm",
    "intel-tdx",
    "agent.guest-fsfreeze",
    "agent.freeze-fs",
    "machine.aw-bits",
    "tpmstate0.format",
}
_DELTA_84 = (
    {(m, t, k, "added") for m, t in _CONFIG for k in _ADDED_IN_9}
    | {(m, t, k, "removed") for m, t in _CONFIG for k in _DRIVE_GEOMETRY}
    | {(m, t, "agent.freeze-fs-on-backup", "changed") for m, t in _CONFIG}
    | {("POST", _Q, "ha-managed", "added")}
    | {
        ("POST", f"{_Q}/{{vmid}}/status/start", k, "added")
        for k in ("with-conntrack-state", "machine.aw-bits")
    }
    | {("POST", f"{_Q}/{{vmid}}/agent/exec", "command", "changed")}
    | {("GET", f"{_Q}/{{vmid}}/agent/file-read", k, "added") for k in ("count", "decode", "offset")}
)


def _load(name: str) -> ApiSchema:
    path = default_shared_dir() / "pve" / name
    if not path.is_file():
        if os.environ.get("AIHOST_REQUIRE_SCHEMA") == "1":
            pytest.fail(f"{path} is missing and AIHOST_REQUIRE_SCHEMA=1")
        pytest.skip(f"Proxmox's API schema is not at {path}")
    return _loaded(path)


@functools.cache
def _loaded(path: Path) -> ApiSchema:
    """The schema at path, read once per run (the tests only read it)."""
    return ApiSchema.load(path)


def _norm(entry: dict[str, Any]) -> dict[str, Any]:
    """The validation-relevant part of a schema entry, in comparable form."""
    out: dict[str, Any] = {}
    for key in _KEEP:
        if key not in entry:
            continue
        value = entry[key]
        if key == "format" and isinstance(value, dict):
            value = {k: _norm(v) for k, v in value.items() if isinstance(v, dict)}
        elif key == "items":
            value = _norm(value)
        elif key in ("minimum", "maximum", "maxLength", "minLength"):
            value = float(value)
        elif key in ("optional", "default_key"):
            if not int(value):
                continue
            value = True
        elif key == "enum":
            value = [str(v) for v in value]
        out[key] = value
    return out


def _flat(props: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{name or name.subkey: normalised entry} with property-string sub-keys spread out."""
    out: dict[str, dict[str, Any]] = {}
    for name, entry in props.items():
        norm = _norm(entry)
        fmt = norm.pop("format", None)
        if isinstance(fmt, dict):
            out.update({f"{name}.{k}": v for k, v in fmt.items()})
        elif fmt is not None:
            norm["format"] = fmt
        out[name] = norm
    return out


def _properties(schema: ApiSchema, method: str, template: str) -> dict[str, Any]:
    route = schema.route(template)
    assert route is not None and method in route.info, f"{method} {template} not in {schema.name}"
    params = route.info[method].get("parameters") or {}
    assert not params.get("additionalProperties"), (method, template)
    return dict(params.get("properties") or {})


_ROUTE_IDS = [f"{m} {t}" for m, t in sorted(DECLARED)]


def test_every_served_route_is_declared_and_nothing_else() -> None:
    assert sorted(set(SERVED) - set(DECLARED)) == []
    assert sorted(set(DECLARED) - set(SERVED)) == []


@pytest.mark.parametrize(("method", "template"), sorted(DECLARED), ids=_ROUTE_IDS)
def test_declarations_equal_pve91(method: str, template: str) -> None:
    real = _flat(_properties(_load("apidoc.json"), method, template))
    ours = _flat(DECLARED[(method, template)])
    assert sorted(ours) == sorted(real)
    assert {k: v for k, v in ours.items() if v != real[k]} == {}


def test_declarations_differ_from_pve84_only_by_the_known_delta() -> None:
    pve8 = _load("apidoc-8.4.json")
    delta = set()
    for method, template in sorted(DECLARED):
        old = _flat(_properties(pve8, method, template))
        ours = _flat(DECLARED[(method, template)])
        delta |= {(method, template, k, "added") for k in set(ours) - set(old)}
        delta |= {(method, template, k, "removed") for k in set(old) - set(ours)}
        delta |= {
            (method, template, k, "changed") for k in set(old) & set(ours) if old[k] != ours[k]
        }
    assert delta == _DELTA_84


def test_named_formats_equal_formats_json() -> None:
    path = default_shared_dir() / "pve" / "formats.json"
    if not path.is_file():
        _load("formats.json")  # skips or fails as for the schema
    real = json.loads(Path(path).read_text(encoding="utf-8"))
    for name in (
        "pve-qm-hostpci",
        "pve-qm-ipconfig",
        "pve-qm-cicustom",
        "pve-qm-boot",
        "pve-vm-cpu-conf",
    ):
        assert _flat(SIM_FORMATS[name]) == _flat(real[name]), name
        assert SIM_FORMATS[name].get("_index_range") == real[name].get("_index_range")
    simple = {
        k: v["pattern"]
        for k, v in real["simple-formats"].items()
        if "pattern" in v and "<" not in v["pattern"]
    }
    assert {k: v["pattern"] for k, v in SIM_FORMATS["simple-formats"].items()} == simple
    ranges = {k: v for k, v in real["index-ranges-qemu"].items() if not k.startswith("_")}
    assert SIM_FORMATS["index-ranges-qemu"] == ranges


def test_the_simulator_refuses_what_it_does_not_declare() -> None:
    checks = sim_schema()
    config = "/api2/json/nodes/pve1/qemu/100/config"
    assert checks.validate("PUT", config, {"cores": "2", "hostpci15": "mapping=gpu"}) == []
    assert checks.validate("PUT", config, {"no-such-option": "1"}) == [
        "no-such-option: property is not defined in schema and the schema does not allow "
        "additional properties"
    ]
    assert checks.validate("PUT", config, {"hostpci16": "mapping=gpu"})  # n is 0..15
    assert checks.validate("GET", "/api2/json/cluster/resources", {"type": "qemu"})
