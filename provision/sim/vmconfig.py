"""VM configs as qemu-server keeps them: current values, pending changes, digest, lock."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from provision.sim import hotplug
from provision.sim.http import fail
from provision.sim.pveformats import split_list
from provision.sim.state import World

# Options a running VM takes at once (qemu-server PVE/QemuServer.pm `$fast_plug_option`,
# to which every `$confdesc_cloudinit` option is added: citype ... sshkeys, ipconfigN);
# the others go through provision.sim.hotplug's branches, and what those skip stays in
# [PENDING] until the next start. Proxmox records a fast-plugged cloud-init change in
# [special:cloudinit] for GET .../cloudinit, which the simulator does not serve.
FAST_PLUG = {
    "description",
    "hookscript",
    "lock",
    "migrate_downtime",
    "migrate_speed",
    "name",
    "onboot",
    "protection",
    "shares",
    "startup",
    "tags",
    "vmstatestorage",
    "citype",
    "ciuser",
    "cipassword",
    "ciupgrade",
    "cicustom",
    "searchdomain",
    "nameserver",
    "sshkeys",
}
INT_KEYS = {
    "cores",
    "sockets",
    "template",
    "balloon",
    "vcpus",
    "onboot",
    "numa",
    "protection",
    "cpuunits",
    "kvm",
    "acpi",
    "tablet",
    "reboot",
    "localtime",
    "shares",
    "vmid",
}
META_PARAMS = {
    "node",
    "vmid",
    "digest",
    "delete",
    "skiplock",
    "background_delay",
    "revert",
    "force",
    "start",
    "pool",
    "unique",
    "archive",
    "storage",
    "live-restore",
    "bwlimit",
}


def vm_record(world: World, node: str, vmid: Any) -> dict[str, Any]:
    """The VM on node, or the error a real node gives for a config it does not have."""
    vm = world["vms"].get(str(vmid))
    if vm is None or vm["node"] != node:
        raise fail(f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist")
    return vm


def memory_mib(config: dict[str, str]) -> int:
    """The VM's memory in MiB ("2048" or "current=2048"; 512 when unset)."""
    text = config.get("memory", "512")
    for item in text.split(","):
        value = item.partition("=")[2] if "=" in item else item
        if (item.startswith("current=") or "=" not in item) and value.isdigit():
            return int(value)
    return 512


def config_aware_timeout(config: dict[str, str], resume: bool = False) -> int:
    """qemu-server PVE/QemuServer/Helpers.pm `config_aware_timeout` (vm_start's default
    `timeout`): 30 s, or the memory in GiB (int) above 30 GiB; x4 with any hostpciN; at
    least 300 s when resuming; at least 150 s with hugepages; then +5 s per netN."""
    memory = memory_mib(config)
    timeout = memory // 1024 if memory > 30720 else 30
    if any(re.fullmatch(r"hostpci\d+", key) for key in config):
        timeout *= 4
    if resume and timeout < 300:
        timeout = 300
    if config.get("hugepages", "0") not in ("", "0") and timeout < 150:  # Perl truth
        timeout = 150
    return timeout + 5 * sum(1 for key in config if re.match(r"net\d+", key))


def digest(vm: dict[str, Any]) -> str:
    """SHA-1 over the whole config file (current section plus [PENDING])."""
    text = json.dumps([vm["config"], vm["pending"], vm["pending_delete"]], sort_keys=True)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def effective(vm: dict[str, Any]) -> dict[str, str]:
    """The config with pending changes applied (what GET config shows by default)."""
    merged = {k: v for k, v in vm["config"].items() if k not in vm["pending_delete"]}
    merged.update(vm["pending"])
    return merged


def typed(config: dict[str, str]) -> dict[str, Any]:
    """A config as the API returns it: integers where the schema says integer."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in INT_KEYS and value.lstrip("-").isdigit():
            out[key] = int(value)
        elif key == "cipassword":
            out[key] = "**********"
        else:
            out[key] = value
    return out


def check_lock(vm: dict[str, Any], skiplock: bool = False) -> None:
    """Refuse changes to a locked VM: "VM is locked (clone)"."""
    lock = vm["config"].get("lock")
    if lock and not skiplock:
        raise fail(f"VM is locked ({lock})")


def check_digest(vm: dict[str, Any], given: str | None) -> None:
    """Refuse a write made against an older version of the config."""
    if given and given != digest(vm):
        raise fail("checksum mismatch (file change by other user?)")


def apply_pending(vm: dict[str, Any]) -> None:
    """Make pending changes current (qemu-server does this on start and API stop)."""
    for key in vm["pending_delete"]:
        vm["config"].pop(key, None)
    vm["config"].update(vm["pending"])
    vm["pending"], vm["pending_delete"] = {}, []


def _live(vm: dict[str, Any], key: str, value: str | None) -> bool:
    """Whether a running VM takes this change (value None: a deletion) at once: qemu-server
    QemuServer.pm `vmconfig_hotplug_pending` applies `$fast_plug_option` keys, then each
    other key through its own branch (provision.sim.hotplug)."""
    if key in FAST_PLUG or re.fullmatch(r"ipconfig\d+", key):
        return True
    return hotplug.takes_live(vm["config"], key, value)


def write(vm: dict[str, Any], changes: dict[str, str], deletes: list[str]) -> None:
    """Apply a config write: at once when stopped or taken live (`_live`), else as
    pending. A set key leaves the pending deletions (QemuConfig `remove_from_pending_delete`
    in update_vm_api's $updatefn)."""
    running = vm["status"] == "running"
    for key, value in changes.items():
        if key in vm["pending_delete"]:
            vm["pending_delete"].remove(key)
        if running and not _live(vm, key, value):
            vm["pending"][key] = value
        else:
            vm["config"][key] = value
            vm["pending"].pop(key, None)
    for key in deletes:
        if running and not _live(vm, key, None):
            vm["pending"].pop(key, None)
            if key in vm["config"] and key not in vm["pending_delete"]:
                vm["pending_delete"].append(key)
        else:
            vm["config"].pop(key, None)
            vm["pending"].pop(key, None)


def pending_list(vm: dict[str, Any]) -> list[dict[str, Any]]:
    """GET .../pending: every key with its current value and pending value or deletion
    (pve-guest-common GuestHelpers.pm config_with_pending_array over qemu-server
    vm_pending's config, which carries the config's `digest` as a key; a pending
    cipassword reads "********** ", with a trailing space)."""
    keys = sorted(set(vm["config"]) | set(vm["pending"]) | set(vm["pending_delete"]))
    out: list[dict[str, Any]] = [{"key": "digest", "value": digest(vm)}]
    for key in keys:
        item: dict[str, Any] = {"key": key}
        if key in vm["config"]:
            item["value"] = typed({key: vm["config"][key]})[key]
        if key in vm["pending"]:
            shown = typed({key: vm["pending"][key]})[key]
            item["pending"] = "********** " if key == "cipassword" else shown
        if key in vm["pending_delete"]:
            item["delete"] = 1
        out.append(item)
    return out


def split_delete(value: Any) -> list[str]:
    """The `delete` parameter (a pve-configid-list) as keys, split as pve-common's
    ParseUtils split_list splits it (NULs, else commas, semicolons and blanks)."""
    text = ",".join(value) if isinstance(value, list) else str(value or "")
    return [k for k in split_list(text) if k]


def option_values(params: dict[str, Any]) -> dict[str, str]:
    """The VM options in a create/config request (everything but the meta parameters),
    as strings; a line break is kept (line_feed_error refuses it where qemu-server does)."""
    out = {}
    for key, value in params.items():
        if key in META_PARAMS:
            continue
        if isinstance(value, bool):
            value = int(value)
        out[key] = str(value)
    return out


def line_feed_error(options: dict[str, str]) -> str | None:
    """qemu-server QemuServer.pm write_vm_config: every value but `description` (written
    as comment lines) passes `check_type`, which dies "property contains a line feed";
    the error reads "unable to parse value of 'KEY' - property contains a line feed".
    write_vm_config runs when the config is written: in the qmcreate worker (create_vm's
    $createfn), in $updatefn (update_vm_api: the qmconfig worker for POST, the request
    for PUT). Of several such keys the first in sorted order is named (Proxmox takes them
    in hash order)."""
    for key in sorted(options):
        if key != "description" and re.search(r"[\n\r]", options[key]):
            return f"unable to parse value of '{key}' - property contains a line feed"
    return None
