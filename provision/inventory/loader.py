"""Read an inventory file, merge defaults, validate, and point errors at file and line."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from provision.errors import InputError, InventoryError
from provision.inventory.fixture_ref import resolve_fixture
from provision.inventory.model import Inventory, SecretRef, Vm, check_bakes
from provision.inventory.pveformats import NODE_RE
from provision.inventory.reading import read_inventory_text
from provision.inventory.secrets import read_secret, secret_available
from provision.inventory.yamlpos import Path_, YamlSyntaxError, line_for, load_with_lines
from provision.pve.pci import GpuRef


def load_inventory(path: Path | str) -> Inventory:
    """Load and validate the inventory at path; raise InventoryError (exit 2) on any problem."""
    file = Path(path)
    shown = str(path)
    text = read_inventory_text(file, shown)
    return parse_inventory(text, shown, base_dir=file.parent)


def parse_inventory(text: str, shown: str, base_dir: Path | None = None) -> Inventory:
    """Validate inventory text; `shown` names the file in messages."""
    try:
        data, lines = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise InventoryError(str(exc), file=shown, line=exc.line) from None
    if not isinstance(data, dict):
        raise InventoryError(
            "the inventory must be a mapping with hosts:, gpus: and vms:", file=shown, line=1
        )
    merged, origin = _merge_defaults(data)
    try:
        inventory = Inventory.model_validate(merged)
    except ValidationError as exc:
        raise _first_error(exc, shown, lines, origin) from None
    _check_unused_defaults(inventory, shown, lines)
    _cross_check(inventory, shown, lines)
    updates: dict[str, Any] = {"source": Path(shown)}
    if inventory.templates_dir is not None and base_dir is not None:
        updates["templates_dir"] = (base_dir / inventory.templates_dir.expanduser()).resolve()
    return inventory.model_copy(update=updates)


def _merge_defaults(data: dict[str, Any]) -> tuple[dict[str, Any], dict[Path_, Path_]]:
    """Put defaults.vm under every VM; remember which VM keys came from the defaults."""
    defaults = data.get("defaults") or {}
    vm_defaults = defaults.get("vm") if isinstance(defaults, dict) else None
    origin: dict[Path_, Path_] = {}
    vms = data.get("vms")
    if not isinstance(vm_defaults, dict) or not isinstance(vms, dict):
        return data, origin
    merged_vms: dict[str, Any] = {}
    for name, vm in vms.items():
        if not isinstance(vm, dict):
            merged_vms[name] = vm
            continue
        combined = dict(vm)
        for key, value in vm_defaults.items():
            if key not in combined:
                combined[key] = value
                origin[("vms", name, key)] = ("defaults", "vm", key)
            elif isinstance(value, dict) and isinstance(combined[key], dict):
                combined[key] = {**value, **combined[key]}
        merged_vms[name] = combined
    return {**data, "vms": merged_vms}, origin


def _check_unused_defaults(inv: Inventory, shown: str, lines: dict[Path_, int]) -> None:
    """defaults.vm values are checked as VM values even when every VM overrides them
    (merged ones were checked already, and point at their line with 'merged into')."""
    values = inv.defaults.vm
    probe = {"host": "h", **values}
    if "template" not in probe and "image" not in probe:
        probe["template"] = "t"
    try:
        Vm.model_validate(probe)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ("defaults", "vm", *error["loc"])
        message, hint = _describe(error, path)
        raise InventoryError(
            f"{'.'.join(str(p) for p in path)}: {message}",
            file=shown,
            line=line_for(lines, path),
            hint=hint,
        ) from None


def _first_error(
    exc: ValidationError, shown: str, lines: dict[Path_, int], origin: dict[Path_, Path_]
) -> InventoryError:
    located = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if p != "[key]")
        source = loc
        for cut in range(len(loc), 0, -1):
            if loc[:cut] in origin:
                source = origin[loc[:cut]] + loc[cut:]
                break
        located.append((line_for(lines, source) or 0, loc, source, error))
    located.sort(key=lambda item: item[0])
    line, loc, source, error = located[0]
    dotted = ".".join(str(p) for p in source) or "(top level)"
    if source != loc:
        dotted += f" (merged into {'.'.join(str(p) for p in loc[:2])})"
    message, hint = _describe(error, loc)
    more = len(located) - 1
    if more:
        hint = (
            f"{hint}; {more} more problem(s) after this one"
            if hint
            else (f"{more} more problem(s) after this one")
        )
    return InventoryError(f"{dotted}: {message}", file=shown, line=line or None, hint=hint)


def _describe(error: Any, loc: Path_) -> tuple[str, str | None]:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _fields_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        if close:
            return f"unknown key '{loc[-1]}'", f"did you mean '{close[0]}'?"
        return f"unknown key '{loc[-1]}'", f"allowed keys: {', '.join(known)}" if known else None
    if kind == "missing":
        return f"missing required key '{loc[-1]}'", None
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("int_type", "int_parsing", "float_parsing", "float_type", "bool_parsing"):
        message += f" (got {error.get('input')!r})"
    return message, None


def _fields_at(loc: Path_) -> list[str]:
    """Field names of the model found by walking loc from the Inventory root."""
    current: Any = Inventory
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    if origin is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def _cross_check(inv: Inventory, shown: str, lines: dict[Path_, int]) -> None:
    def fail(path: Path_, message: str, hint: str | None = None) -> None:
        raise InventoryError(message, file=shown, line=line_for(lines, path), hint=hint)

    hosts = sorted(inv.hosts)
    for name, host in inv.hosts.items():
        if host.node is None and not NODE_RE.fullmatch(name):
            fail(
                ("hosts", name),
                f"hosts.{name}: '{name}' is not a Proxmox node name (pve-node: letters, "
                "digits and '-'), and no node: is given",
                f"add node: NODENAME under hosts.{name}, or rename the entry",
            )
    _check_secrets(inv, fail)
    _check_fixtures(inv, Path(shown), fail)
    for name, gpu in inv.gpus.items():
        if gpu.host not in inv.hosts:
            fail(
                ("gpus", name, "host"),
                f"gpus.{name}.host: unknown host '{gpu.host}'",
                _suggest(gpu.host, hosts),
            )
    _check_devices(inv, fail)
    _check_vms(inv, fail, hosts)
    check_bakes(inv, fail)


def _check_devices(inv: Inventory, fail: Any) -> None:
    """Each physical GPU listed once, whatever the spelling of its address."""
    seen_devices: dict[tuple[str, str, str], str] = {}
    for name, gpu in inv.gpus.items():
        kind, ident = GpuRef.of(gpu).device_key  # 0000:01:00 and 01:00.0: one card
        device = (kind, "" if gpu.mapping else gpu.host, ident)
        if device in seen_devices:
            fail(
                ("gpus", name),
                f"gpus.{name}: same device as gpus.{seen_devices[device]}",
                "each physical GPU is listed once; VMs share it through gpu: NAME",
            )
        seen_devices[device] = name


def _check_vms(inv: Inventory, fail: Any, hosts: list[str]) -> None:
    """Each VM's host and GPUs exist and sit on one node; vmids are unique."""
    vmids: dict[int, str] = {}
    for name, vm in inv.vms.items():
        if vm.host not in inv.hosts:
            fail(
                ("vms", name, "host"),
                f"vms.{name}.host: unknown host '{vm.host}'",
                _suggest(vm.host, hosts),
            )
        for gpu_name in vm.gpu_names:
            if gpu_name not in inv.gpus:
                fail(
                    ("vms", name, "gpu"),
                    f"vms.{name}.gpu: unknown GPU '{gpu_name}'",
                    _suggest(gpu_name, sorted(inv.gpus)),
                )
            gpu = inv.gpus[gpu_name]
            if inv.node_of(gpu.host) != inv.node_of(vm.host):
                fail(
                    ("vms", name, "gpu"),
                    f"vms.{name}.gpu: GPU '{gpu_name}' is on host '{gpu.host}' but the VM is "
                    f"on '{vm.host}'",
                    "a passed-through GPU must be in the VM's node",
                )
            host = inv.hosts[vm.host]
            if gpu.pci and host.api != "sim" and host.password is None:
                fail(
                    ("gpus", gpu_name, "pci"),
                    f"gpus.{gpu_name}.pci: a raw PCI address can only be attached by root@pam "
                    "with a password login; API tokens are refused by Proxmox",
                    f"create a mapping with `aihost gpu map {gpu_name}` and write "
                    "mapping: NAME, or add password: {user: root@pam, secret_env: VAR} "
                    f"to hosts.{vm.host}",
                )
        if vm.vmid is not None:
            if vm.vmid in vmids:
                fail(
                    ("vms", name, "vmid"),
                    f"vms.{name}.vmid: {vm.vmid} is already used by vms.{vmids[vm.vmid]}",
                    "give each VM its own vmid, or leave vmid out to get a free one",
                )
            vmids[vm.vmid] = name


def _check_secrets(inv: Inventory, fail: Any) -> None:
    """Secrets that are there to read must be one line; checked before any request."""
    refs: list[tuple[Path_, SecretRef | None, str]] = []
    for name, host in inv.hosts.items():
        refs.append((("hosts", name, "token"), host.token, "API token secret"))
        refs.append((("hosts", name, "password"), host.password, "password"))
    for name, vm in inv.vms.items():
        refs.append((("vms", name, "hf_token"), vm.hf_token, "Hugging Face token"))
        refs.append((("vms", name, "user", "password"), vm.user.password, "user password"))
    for path, ref, what in refs:
        if ref is None or not secret_available(ref):
            continue  # a missing secret is reported by the command that needs it
        try:
            read_secret(ref, what)
        except InputError as exc:
            fail(path, f"{'.'.join(str(p) for p in path)}: {exc.message}", exc.hint)


def _check_fixtures(inv: Inventory, inventory_file: Path, fail: Any) -> None:
    """A sim_fixture must be a simulator world (checked before the simulator starts)."""
    for name, host in inv.hosts.items():
        if host.api != "sim" or not host.sim_fixture:
            continue
        try:
            resolve_fixture(host.sim_fixture, inventory_file)
        except InputError as exc:
            fail(("hosts", name, "sim_fixture"), f"hosts.{name}.sim_fixture: {exc}")


def _suggest(value: str, known: list[str]) -> str:
    close = difflib.get_close_matches(value, known, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"known: {', '.join(known) or 'none'}"
