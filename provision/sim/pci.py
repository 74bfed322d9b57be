"""PCI passthrough as qemu-server checks it: hostpci entries, mappings against hardware,
devices in use, and the simulator's GPU invariant monitor (which only records)."""

from __future__ import annotations

import re
from typing import Any

from provision.sim.state import World

HOSTPCI = re.compile(r"hostpci\d+")
TRUE = {"1", "on", "yes", "true"}


def parse_prop(value: str, default_key: str | None = None) -> dict[str, str]:
    """A property string "a=1,b=2" as a dict; a bare first item goes to default_key."""
    out: dict[str, str] = {}
    for item in (value or "").split(","):
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep and default_key:
            out[default_key] = key
        else:
            out[key] = val
    return out


def hostpci_entries(config: dict[str, str]) -> dict[str, dict[str, str]]:
    """{hostpciN: parsed property string} of a config."""
    return {k: parse_prop(v, "host") for k, v in config.items() if HOSTPCI.fullmatch(k)}


def node_devices(world: World, node: str) -> dict[str, dict[str, Any]]:
    """The node's PCI devices by full id (0000:01:00.0)."""
    return {d["id"]: d for d in world["nodes"][node]["pci"]}


def _functions(devices: dict[str, dict[str, Any]], host_id: str) -> list[str]:
    full = host_id if host_id.count(":") == 2 else f"0000:{host_id}"
    if "." in full:
        return [full] if full in devices else []
    return sorted(d for d in devices if d.startswith(full + "."))


def mapping_paths(world: World, name: str, node: str) -> list[dict[str, str]]:
    """The map entries of a PCI mapping for one node."""
    mapping = world["mappings"]["pci"].get(name)
    if mapping is None:
        return []
    entries = [parse_prop(e) for e in mapping["map"]]
    return [e for e in entries if e.get("node") == node]


def check_map_entry(
    world: World, node: str, entry: dict[str, str], name: str, mapping: dict[str, Any] | None = None
) -> str | None:
    """What pve-guest-common `PVE::Mapping::PCI::assert_valid` dies with for a map entry on
    node's hardware (None when it matches). Per path: id, subsystem-id and, for the first
    path only, iommugroup; with the mapping's cluster entry also its mdev flag. Properties
    are compared in sorted order, "0x" removed, as strings."""
    devices = node_devices(world, node)
    for index, path in enumerate(entry.get("path", "").split(";")):
        full = path if "." in path else f"{path}.0"
        dev = devices.get(full if full.count(":") == 2 else f"0000:{full}")
        if dev is None:
            return f"pci device '{full}' not found"
        expected: dict[str, str | None] = {
            "id": f"{dev['vendor']}:{dev['device']}",
            "iommugroup": str(dev.get("iommugroup", -1)),
            "subsystem-id": None,
        }
        if dev.get("subsystem_vendor") and dev.get("subsystem_device"):
            expected["subsystem-id"] = f"{dev['subsystem_vendor']}:{dev['subsystem_device']}"
        configured = {k: entry.get(k) for k in ("id", "iommugroup", "subsystem-id")}
        if mapping is not None:
            expected["mdev"] = "1" if dev.get("mdev") else "0"
            configured["mdev"] = "1" if str(mapping.get("mdev") or 0) not in ("0", "") else "0"
        for prop in sorted(expected):
            want, given = expected[prop], configured[prop]
            if (prop == "iommugroup" and index > 0) or (want is None and given is None):
                continue
            if given is None:
                return f"missing expected property '{prop}' for device '{full}'"
            if want is None:
                return f"unexpected property '{prop}' configured for device '{full}'"
            if want.replace("0x", "") != given.replace("0x", ""):
                return (
                    f"'{prop}' does not match for '{name}' "
                    f"({want.replace('0x', '')} != {given.replace('0x', '')})"
                )
    return None


def resolve(
    world: World, node: str, entry: dict[str, str], busy: set[str] | None = None
) -> list[str]:  # noqa: E501
    """The device ids (every function) a hostpci entry passes through on node.

    For a mapping with several paths on the node, the first one not in busy is taken.
    """
    devices = node_devices(world, node)
    if "mapping" in entry:
        paths = [e.get("path", "") for e in mapping_paths(world, entry["mapping"], node)]
        for path in paths:
            funcs = [f for p in path.split(";") for f in _functions(devices, p)]
            if not busy or not set(funcs) & busy:
                return funcs
        return [f for p in (paths[:1] or [""])[0].split(";") if p for f in _functions(devices, p)]
    return [
        f for host in entry.get("host", "").split(";") if host for f in _functions(devices, host)
    ]  # noqa: E501


def used_by_running(world: World, node: str, exclude: str) -> dict[str, str]:
    """{device id: vmid} of devices held by running VMs on node."""
    held: dict[str, str] = {}
    for vmid, vm in world["vms"].items():
        if vmid != exclude and vm["node"] == node and vm["status"] == "running":
            for dev in vm.get("pci_in_use", []):
                held[dev] = vmid
    return held


def reserved_by_starting(world: World, node: str, exclude: str) -> dict[str, str]:
    """{device id: vmid} of devices reserved by start tasks still running on node."""
    held: dict[str, str] = {}
    for task in world["tasks"].values():
        starting = task["status"] == "running" and task["type"] == "qmstart"
        if starting and task["node"] == node and task["id"] != exclude and not task["error"]:
            for dev in task["effect"].get("pci", []):
                held[dev] = task["id"]
    return held


def command_devices(
    world: World, node: str, vmid: str, config: dict[str, str]
) -> tuple[dict[str, list[str]], str | None]:
    """({hostpciN: device ids}, error) as config_to_command resolves them: qemu-server
    src/PVE/QemuServer/PCI.pm `print_hostpci_devices` -> `parse_hostpci_devices` (per
    entry `parse_hostpci`: host/mapping, the mapping on this node and `assert_valid`, a
    device per id; then q35) and `choose_hostpci_devices` (a mapping with several devices
    takes a free one, else "could not find a free device"). Devices in use by one VM with
    a single choice are refused later, by `reserve_devices`."""
    busy = set(used_by_running(world, node, vmid)) | set(reserved_by_starting(world, node, vmid))
    chosen: dict[str, list[str]] = {}
    for key, entry in sorted(hostpci_entries(config).items()):
        alternatives = 1
        if "host" in entry and "mapping" in entry:
            return {}, "Cannot set both 'host' and 'mapping'."
        if "mapping" in entry:
            paths = mapping_paths(world, entry["mapping"], node)
            if not paths:
                return {}, f"PCI device mapping not found for '{entry['mapping']}'"
            cluster_entry = world["mappings"]["pci"].get(entry["mapping"])
            for map_entry in paths:
                problem = check_map_entry(world, node, map_entry, entry["mapping"], cluster_entry)
                if problem:
                    return {}, f"PCI device mapping invalid (hardware probably changed): {problem}"
            alternatives = len(paths)
        elif not entry.get("host"):
            return {}, "Either 'host' or 'mapping' must be set."
        used = busy | {d for funcs in chosen.values() for d in funcs}
        funcs = resolve(world, node, entry, used)
        if not funcs:
            return {}, f"no PCI device found for '{entry.get('host', entry.get('mapping'))}'"
        if entry.get("pcie", "0").lower() in TRUE and "q35" not in config.get("machine", ""):
            return {}, "q35 machine model is not enabled"
        if alternatives > 1 and set(funcs) & used:
            return {}, f"could not find a free device for '{key}'"
        chosen[key] = funcs
    return chosen, None


def reserve_devices(
    world: World, node: str, vmid: str, chosen: dict[str, list[str]]
) -> tuple[list[str], str | None]:
    """(device ids, error) after config_to_command in qemu-server src/PVE/QemuServer.pm
    `vm_start_nolock`: PCI.pm `reserve_pci_usage` (a device a running VM holds, or a start
    task of another VM reserved), then `prepare_pci_device` per device ("IOMMU not
    present")."""
    devices = [d for _key, funcs in sorted(chosen.items()) for d in funcs]
    if not devices:
        return [], None
    running = used_by_running(world, node, vmid)
    reserved = reserved_by_starting(world, node, vmid)
    for dev in devices:
        if dev in running:
            return [], f"PCI device '{dev}' already in use by VMID '{running[dev]}'"
        if dev in reserved:
            return [], f"PCI device '{dev}' is currently reserved for use by VMID '{reserved[dev]}'"
    if any(int(d.get("iommugroup", -1)) < 0 for d in node_devices(world, node).values()):
        return [], "cannot prepare PCI pass-through, IOMMU not present"
    return devices, None


def record_invariants(world: World, effective: dict[str, dict[str, str]]) -> None:
    """GPU invariant monitor: every physical device in at most one VM config and at most
    one running VM. Violations are recorded in world["violations"], never refused."""
    referenced: dict[tuple[str, str], set[str]] = {}
    for vmid, vm in world["vms"].items():
        for entry in hostpci_entries(effective.get(vmid, vm["config"])).values():
            for dev in resolve(world, vm["node"], entry):
                referenced.setdefault((vm["node"], dev), set()).add(vmid)
    running: dict[tuple[str, str], set[str]] = {}
    for vmid, vm in world["vms"].items():
        if vm["status"] == "running":
            for dev in vm.get("pci_in_use", []):
                running.setdefault((vm["node"], dev), set()).add(vmid)
    found = [
        f"GPU invariant: PCI device {dev} on {node} is {what} VMs {', '.join(sorted(ids))}"
        for what, table in (
            ("referenced by the configs of", referenced),
            ("used by running", running),
        )  # noqa: E501
        for (node, dev), ids in sorted(table.items())
        if len(ids) > 1
    ]
    for text in found:
        if text not in world["violations"]:
            world["violations"].append(text)
