"""`virtiofsN` on a VM as qemu-server checks it (qemu-server e6352be6).

- Setting, changing or deleting it: `src/PVE/API2/Qemu.pm` `check_dir_perm` (VM.Config.Disk
  on the VM, Mapping.Use on /mapping/dir/DIRID; root@pam exempt), from
  `check_vm_create_dir_perm` on create and `$updatefn` on update (for the old value too);
  `$check_vm_modify_config_perm` skips the key. Clone and restore: `src/PVE/QemuServer.pm`
  `check_mapping_access` (Mapping.Use on /mapping/dir/DIRID).
- Starting: `src/PVE/QemuServer/Virtiofs.pm` `config` -> `assert_virtiofs_config` (in
  config_to_command, after the hostpci devices are resolved: the mapping must exist and
  have one entry for the VM's node whose path is a directory there, no `expose-acl` on
  Windows; `command_error`), then, after the PCI reservation, `start_virtiofsd`
  ("virtiofsd is not installed…" without /usr/libexec/virtiofsd: a node with
  `virtiofsd: false` in the fixture; `daemon_error`). The option is `m/^virtiofs\\d$/`: 0-9.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from provision.sim.context import Ctx
from provision.sim.dirmap import assert_valid, find_on_node
from provision.sim.http import ApiFailure, param_fail
from provision.sim.pci import parse_prop
from provision.sim.state import World

VIRTIOFS = re.compile(r"virtiofs\d")
SINCE = (8, 4)  # pve-manager 8.4 added Mapping/Dir.pm, qemu-server 8.4 virtiofsN
_WINDOWS = re.compile(r"w(?:xp|2k|2k3|2k8|vista|7|8|10|11)")  # Helpers.pm windows_version
_TRUE = ("1", "on", "yes", "true")


def release(world: World) -> tuple[int, int]:
    """(major, minor) of the simulated node's Proxmox VE (the fixture's `version:`)."""
    parts = (str(world.get("version") or "9.1").split(".") + ["0"])[:2]
    return int(parts[0]), int(parts[1])


def refuse_unknown_keys(world: World, keys: Iterable[str]) -> None:
    """Before 8.4 qemu-server has no virtiofsN: pve-common's check_object refuses it."""
    if release(world) < SINCE:
        unknown = sorted(k for k in keys if VIRTIOFS.fullmatch(k))
        if unknown:
            message = "property is not defined in schema and the schema does not allow "
            raise param_fail({k: message + "additional properties" for k in unknown})


def dirid(value: str) -> str:
    """The mapping id of a virtiofs value (`dirid` is the default key)."""
    return parse_prop(value, "dirid").get("dirid", "")


def dir_perm(ctx: Ctx, vmid: str, value: str) -> None:
    """Qemu.pm `check_dir_perm`: VM.Config.Disk on the VM, Mapping.Use on the mapping."""
    if ctx.identity.is_root_ticket:
        return
    ctx.require(f"/vms/{vmid}", ["VM.Config.Disk"])
    ctx.require(f"/mapping/dir/{dirid(value)}", ["Mapping.Use"])


def mapping_access(ctx: Ctx, config: dict[str, str]) -> None:
    """QemuServer.pm `check_mapping_access` for virtiofsN (clone): Mapping.Use only."""
    if ctx.identity.is_root_ticket:
        return
    for key in sorted(config):
        if VIRTIOFS.fullmatch(key):
            ctx.require(f"/mapping/dir/{dirid(config[key])}", ["Mapping.Use"])


def shares(world: World, node: str, config: dict[str, str]) -> list[dict[str, str]]:
    """The host directory of each virtiofsN on node: [{key, dirid, path}] (no checks)."""
    out = []
    for key in sorted(k for k in config if VIRTIOFS.fullmatch(k)):
        name = dirid(config[key])
        entry = (world["mappings"].get("dir") or {}).get(name) or {}
        for text in entry.get("map") or []:
            fields = parse_prop(str(text))
            if fields.get("node") == node:
                out.append({"key": key, "dirid": name, "path": fields.get("path", "")})
                break
    return out


def command_error(world: World, node: str, config: dict[str, str]) -> str | None:
    """The start's error from the virtiofs options as config_to_command meets them
    (Virtiofs.pm `config` -> `assert_virtiofs_config`), or None."""
    try:
        for key in sorted(k for k in config if VIRTIOFS.fullmatch(k)):
            value = parse_prop(config[key], "dirid")
            found = find_on_node(world, value.get("dirid", ""), node)
            acl = str(value.get("expose-acl", "0")).lower() in _TRUE
            if acl and _WINDOWS.fullmatch(config.get("ostype", "")):
                return (
                    "Please disable ACLs for virtiofs on Windows VMs, otherwise the virtiofs "
                    "shared directory cannot be mounted."
                )
            try:
                assert_valid(world, node, found.get("path", ""))
            except ApiFailure as problem:
                return f"directory mapping invalid: {problem.message}"
    except ApiFailure as problem:
        return problem.message
    return None


def daemon_error(world: World, node: str, config: dict[str, str]) -> str | None:
    """The start's error from starting virtiofsd (QemuServer.pm `vm_start_nolock` ->
    `start_all_virtiofsd` -> Virtiofs.pm `start_virtiofsd`, after the PCI devices are
    reserved and prepared), or None."""
    spec: dict[str, Any] = world["nodes"].get(node) or {}
    if any(VIRTIOFS.fullmatch(k) for k in config) and spec.get("virtiofsd") is False:
        return "virtiofsd is not installed. To use virtio-fs, install virtiofsd via apt."
    return None
