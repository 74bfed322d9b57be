"""The simulator's parameter checks give Proxmox's own verdicts.

Proxmox's validator, pve-common's `PVE::JSONSchema::validate` (../shared/pve/perl, see
its README), runs in one perl process (tests/support/pve_oracle.pl) fed every case as a
JSON line, against each served route's parameter schema from ../shared/pve/apidoc.json
(PVE 9.1; `name[n]` expanded to name0..nameN as qemu-server does) with qemu-server's
property-string formats registered from formats.json. For every parameter the simulator
declares (provision.sim.params_routes, which includes everything aihost sends) it gets
valid, boundary and hostile values (tests/support/oracle_cases.py), and each request
must be accepted or refused alike by Proxmox, by the simulator's built-in checks (on in
every mode: `api: sim`, `sim serve`, tests) and by the apidoc.json-loaded validator; the
built-in checks must also refuse in Proxmox's words (each parameter's message, lines
compared in any order: Perl reports several sub-key errors in hash order).

Approximated in the oracle: pve-storage's `pve-volume-id` (PVE/Storage.pm
`parse_volume_id`), registered from formats.json's transcribed pattern.

Left out (formats verified by code in qemu-server, pve-storage, pve-access-control or
pve-manager that the oracle cannot load; the parameters or sub-keys using them are not
compared, and ORACLE_LACKS is asserted to be exactly what the oracle lacks):
qemu-server `pve-volume-id-or-qm-path`, `pve-volume-id-or-absolute-path`, `pve-qm-ide`,
`pve-qm-bootdisk`, `pve-qm-bootdev` (boot `order`), `pve-hotplug-features`,
`pve-phys-bits`, `pve-cpuset`, `pve-qemu-sev-fmt`, `pve-qemu-tdx-fmt`, `pve-qm-rng`,
`pve-qm-smbios1`, `pve-qm-watchdog`; pve-storage `pve-storage-content`; pve-access-control
`pve-poolid`, `pve-priv`, `pve-realm`; pve-manager `pve-acme-domain`, `pve-acme-alias`;
pve-guest-common `pve-storage-path-in-property-string` (src/PVE/Mapping/Dir.pm
`pve_verify_path`: a directory mapping's `path`, checked by tests/sim/test_dirmap.py).
So the drive options (`scsi[n]`, `virtio[n]`, `sata[n]`, `ide[n]`, `efidisk0`,
`tpmstate0`: their required `file`), `cdrom`, `affinity`, `hotplug`, `bootdisk`, `amd-sev`,
`intel-tdx`, `rng0`, `smbios1`, `watchdog`, `pool`, boot's `order`, cpu's `phys-bits`,
the upload route (`content`) and the login's `privs`/`realm` are not compared.
Also not compared: rules Proxmox runs in API code after the schema (qemu-server
check_hostpci_perm's host-or-mapping, write_vm_config's line feeds; see
tests/sim/test_validation_modes.py) and cpu `level` for the apidoc.json validator
(qemu-server 9.2 has it, formats.json follows 9.2; PVE 9.1's typetext lacks it).

Skipped when perl or its modules are missing, unless AIHOST_REQUIRE_TOOLS=1 (CI), where
that fails; the schema files are required as in the other schema tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from support.oracle_cases import property_values, sample, scalar_values

from provision.sim.apischema import ApiSchema, default_shared_dir
from provision.sim.params_check import sim_schema
from provision.sim.params_formats import SIM_FORMATS
from provision.sim.params_routes import DECLARED

ORACLE = Path(__file__).resolve().parents[1] / "support" / "pve_oracle.pl"
ORACLE_LACKS = {
    "pve-storage-path-in-property-string",
    "pve-volume-id-or-qm-path",
    "pve-volume-id-or-absolute-path",
    "pve-qm-ide",
    "pve-qm-bootdisk",
    "pve-qm-bootdev",
    "pve-hotplug-features",
    "pve-phys-bits",
    "pve-cpuset",
    "pve-qemu-sev-fmt",
    "pve-qemu-tdx-fmt",
    "pve-qm-rng",
    "pve-qm-smbios1",
    "pve-qm-watchdog",
    "pve-poolid",
    "pve-storage-content",
    "pve-priv",
    "pve-realm",
    "pve-acme-domain",
    "pve-acme-alias",
}
_PUT_CONFIG = DECLARED[("PUT", "/nodes/{node}/qemu/{vmid}/config")]
_VM_DUPLICATES = {("POST", "/nodes/{node}/qemu"), ("POST", "/nodes/{node}/qemu/{vmid}/config")}
_UNDEFINED = re.compile(r"(?:undefined format '|unknown format: )([\w-]+)")
_HASH_FORMATS = {
    name: {k: v for k, v in fmt.items() if not k.startswith("_")}
    for name, fmt in SIM_FORMATS.items()
    if name.startswith("pve-")
}


def _shared(name: str) -> Path:
    path = default_shared_dir() / "pve" / name
    if not path.is_file():
        if os.environ.get("AIHOST_REQUIRE_SCHEMA") == "1":
            pytest.fail(f"{path} is missing and AIHOST_REQUIRE_SCHEMA=1")
        pytest.skip(f"{path} is absent")
    return path


def _perl_command() -> list[str]:
    lib = default_shared_dir() / "pve" / "perl"
    command = ["perl", f"-I{lib}", str(ORACLE), str(_shared("formats.json"))]
    probe = None
    if shutil.which("perl") is None:
        problem = "perl is not installed"
    else:
        probe = subprocess.run(
            ["perl", f"-I{lib}", "-MPVE::JSONSchema", "-MJSON", "-e", "1"],
            capture_output=True,
            text=True,
            check=False,
        )
        problem = None if probe.returncode == 0 else probe.stderr.strip().splitlines()[0]
    if problem is not None:
        message = f"Proxmox's validator cannot run: {problem} (see {lib}/README.md)"
        if os.environ.get("AIHOST_REQUIRE_TOOLS") == "1":
            pytest.fail(message + " and AIHOST_REQUIRE_TOOLS=1")
        pytest.skip(message)
    return command


def _formats_used(entries: dict[str, Any], out: set[str]) -> set[str]:
    for entry in entries.values():
        for item in (entry, entry.get("items") or {}):
            fmt = item.get("format")
            if isinstance(fmt, dict):
                _formats_used(fmt, out)
            elif isinstance(fmt, str):
                out.add(re.sub(r"-(list|opt)$", "", fmt))
                if fmt in _HASH_FORMATS:
                    _formats_used(_HASH_FORMATS[fmt], out)
    return out


def _lacks(entry: dict[str, Any], missing: set[str]) -> bool:
    """True when the oracle cannot check a value of entry: its format, its items' or a
    required sub-key's of its property string (a mapping's `map` items' `path`)."""
    fmt = entry.get("format")
    if isinstance(fmt, str):
        return re.sub(r"-(list|opt)$", "", fmt) in missing
    items = entry.get("items")
    if isinstance(items, dict) and _lacks(items, missing):
        return True
    return isinstance(fmt, dict) and any(
        isinstance(sub, dict) and not sub.get("optional") and _lacks(sub, missing)
        for sub in fmt.values()
    )


class Cases:
    """The requests to compare, as oracle lines and as simulator calls."""

    def __init__(self, apidoc: ApiSchema, missing: set[str]) -> None:
        self.apidoc, self.missing = apidoc, missing
        self.lines: list[str] = []
        self.calls: list[tuple[str, str, dict[str, Any], str]] = []
        self.left_out: set[str] = set()

    def route(self, method: str, template: str) -> None:
        """Schema line plus every case of one route."""
        props = DECLARED[(method, template)]
        real = self.apidoc.route(template)
        assert real is not None
        schema = dict(real.info[method]["parameters"])
        schema["properties"] = self._expand(template, schema.get("properties") or {}, props)
        key = f"{method} {template}"
        self.lines.append(json.dumps({"schema": key, "parameters": schema}))
        required = {n: e for n, e in props.items() if not e.get("optional")}
        blind = [n for n, e in required.items() if _lacks(e, self.missing)]
        if blind:  # a required parameter the oracle cannot check: the route is left out
            self.left_out.add(f"{key} ({', '.join(blind)})")
            return
        base = {n: sample(n, e, _HASH_FORMATS) for n, e in required.items()}
        self._add(key, method, template, base, "(base)")
        self._add(key, method, template, {**base, "no-such-param": "1"}, "no-such-param")
        for name, entry in props.items():
            if (method, template) in _VM_DUPLICATES and name in _PUT_CONFIG:
                continue  # the same option as PUT .../config, compared there
            needs = entry.get("requires")
            with_needs = dict(base)
            if (
                isinstance(needs, str)
                and needs not in base
                and not _lacks(props[needs], self.missing)
            ):  # e.g. force requires delete
                with_needs[needs] = sample(needs, props[needs], _HASH_FORMATS)
            if name in base:
                self._add(
                    key,
                    method,
                    template,
                    {k: v for k, v in base.items() if k != name},
                    f"{name} (missing)",
                )
            for concrete, value in self._values(template, name, entry):
                self._add(key, method, template, {**with_needs, concrete: value}, concrete)

    def _values(self, template: str, name: str, entry: dict[str, Any]) -> list[tuple[str, Any]]:
        if _lacks(entry, self.missing) or _lacks(entry.get("items") or {}, self.missing):
            self.left_out.add(name)
            return []
        concrete = name.replace("[n]", "0")
        item = entry.get("items") if entry.get("type") == "array" else entry
        assert item is not None
        fmt = item.get("format")
        fmt = _HASH_FORMATS.get(fmt, fmt) if isinstance(fmt, str) else fmt
        if isinstance(fmt, dict):
            fmt = self._known_keys(name, fmt)
            if fmt is None:
                return []
            values = property_values(fmt, _HASH_FORMATS)
        else:
            values = scalar_values(name, item)
        if entry.get("type") == "array":
            good = sample(name, entry, _HASH_FORMATS)
            return [(concrete, [v]) for v in values] + [(concrete, []), (concrete, good * 2)]
        out = [(concrete, v) for v in values]
        if "[n]" in name:
            bounds = self.apidoc._index_range(template, name[:-3], entry)
            assert bounds is not None, name
            good = sample(name, entry, _HASH_FORMATS)
            out += [(f"{name[:-3]}{n}", good) for n in (bounds[1], bounds[1] + 1, "00", "01")]
        return out

    def _known_keys(self, name: str, fmt: dict[str, Any]) -> dict[str, Any] | None:
        """The property-string format without the sub-keys the oracle cannot check (None
        when a required one is among them)."""
        kept = {}
        for key, sub in fmt.items():
            if isinstance(sub, dict) and _lacks(sub, self.missing):
                self.left_out.add(f"{name}.{key}")
                if not sub.get("optional") and "alias" not in sub:
                    return None
                continue
            kept[key] = sub
        return kept

    def _expand(self, template: str, props: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, entry in props.items():
            if "[n]" not in name:
                out[name] = entry
                continue
            bounds = self.apidoc._index_range(template, name[:-3], entry) or tuple(
                ours[name].get("_index_range", ())
            )
            assert bounds is not None, name
            for n in range(bounds[0], bounds[1] + 1):
                out[f"{name[:-3]}{n}"] = {**entry, "optional": 1}
        return out

    def _add(
        self, key: str, method: str, template: str, params: dict[str, Any], label: str
    ) -> None:
        path_params = re.findall(r"\{(\w+)\}", template)
        values = {p: params.get(p, "") for p in path_params}
        if any(not isinstance(v, str) or v in ("", ".", "..") or "/" in v for v in values.values()):
            return  # a path that routes elsewhere: not a parameter check
        path = template
        for name, value in values.items():
            path = path.replace(f"{{{name}}}", quote(value, safe=""))
        body = {k: v for k, v in params.items() if k not in values}
        case = len(self.calls)
        self.calls.append((method, "/api2/json" + path, body, label))
        self.lines.append(json.dumps({"case": case, "schema": key, "params": params}))


def _nested(errors: dict[str, str]) -> dict[str, str]:
    """Sub-key errors under their parameter, as the 400 answer carries them (app._validate)."""
    out: dict[str, str] = {}
    for key, message in errors.items():
        top = key.partition(".")[0]
        if "." in key:
            out[top] = out.get(top, "invalid format - format error\n") + f"{key}: {message}\n"
        else:
            out[key] = message
    return out


def _lines(errors: dict[str, str]) -> dict[str, list[str]]:
    """Messages as sorted lines (Perl reports several sub-key errors in hash order)."""
    return {k: sorted(line for line in v.split("\n") if line) for k, v in errors.items()}


def _run_oracle(command: list[str], cases_for: Any) -> tuple[Cases, list[dict[str, Any]]]:
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        used = set()
        for entries in DECLARED.values():
            _formats_used(entries, used)
        proc.stdin.write(json.dumps({"formats": sorted(used)}) + "\n")
        proc.stdin.flush()
        known = set(json.loads(proc.stdout.readline())["known"])
        cases = cases_for(used - known)
        out, err = proc.communicate("\n".join(cases.lines) + "\n", timeout=300)
    assert proc.returncode == 0, err
    return cases, [json.loads(line) for line in out.splitlines()]


@pytest.mark.slow
def test_simulator_checks_agree_with_pve_jsonschema() -> None:
    command = _perl_command()
    apidoc = ApiSchema.load(_shared("apidoc.json"))

    def build(missing: set[str]) -> Cases:
        cases = Cases(apidoc, missing)
        for method, template in sorted(DECLARED):
            cases.route(method, template)
        return cases

    cases, answers = _run_oracle(command, build)
    assert cases.missing == ORACLE_LACKS
    assert len(answers) == len(cases.calls)
    builtin = sim_schema()
    disagree: list[str] = []
    worded: list[str] = []  # refused alike, but in other words than Proxmox's
    verdicts = {"accepted": 0, "refused": 0}
    for answer in answers:
        method, path, body, label = cases.calls[answer["case"]]
        assert not _UNDEFINED.search(json.dumps(answer.get("errors", {}))), answer
        ours = {
            name: s.check(method, path, body)
            for name, s in (("simulator", builtin), ("apidoc.json", apidoc))
        }
        verdicts["accepted" if answer["ok"] else "refused"] += 1
        for name, errors in ours.items():
            if name == "apidoc.json" and label == "cpu" and "level=" in str(body.get("cpu")):
                continue  # `level` is qemu-server 9.2's (formats.json); 9.1's typetext lacks it
            if (
                errors
                and not answer["ok"]
                and name == "simulator"
                and _lines(_nested(errors)) != _lines(answer["errors"])
            ):
                worded.append(
                    f"{method} {path} {label}={body.get(label)!r}: proxmox "
                    f"{answer['errors']}, simulator {_nested(errors)}"
                )
            if (not errors) != bool(answer["ok"]):
                disagree.append(
                    f"{name}: {method} {path} {label}={body.get(label)!r}: "
                    f"proxmox {answer.get('errors') or 'accepts'}, "
                    f"{name} {errors or 'accepts'}"
                )
    print(
        f"{len(cases.calls)} cases over {len(DECLARED)} routes: {verdicts}; "
        f"left out: {sorted(cases.left_out)}"
    )
    assert disagree == [], f"{len(disagree)} disagreements, e.g.:\n" + "\n".join(disagree[:40])
    assert worded == [], f"{len(worded)} other messages, e.g.:\n" + "\n".join(worded[:20])
    assert verdicts["accepted"] > 1000 and verdicts["refused"] > 5000
