"""What VM tasks do when they end, and what a start checks when it is accepted."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from provision.sim import (
    cicustom,
    faults,
    guest,
    guest_net,
    guest_netcfg,
    model_store,
    pci,
    virtiofs,
)
from provision.sim.cidata import read_cidata_iso
from provision.sim.fixture import DISK_KEY
from provision.sim.netnorm import NET_KEY
from provision.sim.state import World
from provision.sim.storage import file_path, free_volume
from provision.sim.tasks import new_task
from provision.sim.vmconfig import apply_pending, config_aware_timeout, effective


def apply_task(world: World, task: dict[str, Any], at: float) -> None:
    """Apply a finished task's effect (or undo its preparations when it failed)."""
    effect, failed = task["effect"], bool(task["error"])
    vmid = str(effect.get("target_vmid", task["id"]))
    vm = world["vms"].get(vmid)
    op = effect.get("op")
    if vm is None or op is None:
        return
    if op in ("create", "clone"):
        if failed:
            for volid in effect.get("volumes", []):
                free_volume(world, volid)
            del world["vms"][vmid]
            return
        _finish_config(world, vm, effect)
        if effect.get("start"):  # create with start=1: a failed start stays hidden
            outcome = start_checks(Path(effect["state_dir"]), world, vmid, vm)
            if outcome["error"] is None:
                _run(world, vm, outcome["pci"], at, outcome["guest"])
    elif op == "destroy" and not failed:
        _free_owned(world, vmid, vm, bool(effect.get("unreferenced")))
        del world["vms"][vmid]
    elif op == "destroy" and vm["config"].get("lock") == "destroyed":
        vm["config"].pop("lock", None)
    elif op == "start" and not failed:
        _run(world, vm, effect.get("pci", []), at, effect.get("guest", {}))
        pci.record_invariants(world, {})
    elif op in ("stop", "reboot") and not failed:
        vm.update(status="stopped", started_at=None, pci_in_use=[])
        apply_pending(vm)
        if op == "reboot":
            _restart(world, vmid, vm, effect, at)


def _finish_config(world: World, vm: dict[str, Any], effect: dict[str, Any]) -> None:
    """The whole config a create or clone worker writes at its end, without the lock
    (qemu-server PVE/API2/Qemu.pm `create_vm` `$createfn`, `clone_vm` `$clonefn`: `delete
    $newconf->{lock}`, then the config file renamed to the target node)."""
    if "config" in effect:
        vm["config"] = dict(effect["config"])
    vm["config"].pop("lock", None)
    vm["node"] = effect.get("target") or vm["node"]
    pci.record_invariants(world, {v: effective(r) for v, r in world["vms"].items()})


def start_task(
    state_dir: Path, world: World, vmid: str, vm: dict[str, Any], duration: float, timeout: float
) -> dict[str, Any]:
    """The qmstart task a start makes (qemu-server PVE/QemuServer.pm `vm_start`): its effect
    (devices, guest facts), error, warnings, log and duration. The start gives up after
    timeout seconds ("got timeout"), which defaults to `config_aware_timeout`."""
    outcome = start_checks(state_dir, world, vmid, vm)
    outcome["op"] = "start"
    error = outcome.pop("error")
    if error is None and duration > timeout:
        error = f"start failed: command '/usr/bin/kvm -id {vmid} ...' failed: got timeout"
        duration = timeout
    # Cloudinit.pm commit_cloudinit_disk prints it, for the VM's cloud-init drive only
    log = ["generating cloud-init ISO"] if cicustom.cloudinit_drive(vmid, vm["config"]) else []
    return {
        "effect": outcome,
        "error": error,
        "warnings": outcome.pop("warnings"),
        "log": log,
        "duration": duration,
    }


def _restart(
    world: World, vmid: str, vm: dict[str, Any], effect: dict[str, Any], at: float
) -> None:
    """The restart after a reboot's shutdown, which the reboot task knows nothing of.

    qmeventd sees QEMU exit and runs `qm cleanup` (qemu-server PVE/CLI/qm.pm `cleanup`),
    which finds /run/qemu-server/VMID.reboot (written by PVE/QemuServer.pm `vm_reboot`)
    and calls PVE::API2::Qemu->vm_start as root@pam with no timeout: a qmstart task of its
    own that may fail (PCI device in use, missing snippet) after the reboot ended OK.
    """
    extra, injected = faults.task_fault(world, "qmstart", vm["node"])
    timeout = config_aware_timeout(vm["config"])
    made = start_task(
        Path(effect["state_dir"]),
        world,
        vmid,
        vm,
        float(effect.get("restart_duration", 0.0)),
        timeout,
    )
    new_task(
        world,
        at,
        node=vm["node"],
        kind="qmstart",
        vmid=vmid,
        user="root@pam",
        duration=made["duration"] + extra,
        effect=made["effect"],
        error=made["error"] or injected,
        warnings=made["warnings"],
        log=made["log"],
    )


_VOLUME_KEY = re.compile(rf"{DISK_KEY.pattern}|unused\\d+|vmstate")


def _free_owned(world: World, vmid: str, vm: dict[str, Any], unreferenced: bool) -> None:
    """qemu-server PVE/QemuServer.pm destroy_vm: free the volumes this VM owns that its
    config, unused entries and pending changes name (CD-ROMs other than the cloud-init
    drive and other VMs' volumes stay); with destroy-unreferenced-disks also every image
    of the VM on every storage."""
    values = list(vm["config"].items()) + list((vm.get("pending") or {}).items())
    for key, value in values:
        volid = str(value).split(",")[0]
        if not _VOLUME_KEY.fullmatch(key) or ":" not in volid:
            continue
        if "media=cdrom" in str(value) and not cicustom.is_cloudinit_volume(volid):
            continue
        if _owner(volid) == vmid:
            free_volume(world, volid)
    if unreferenced:
        for sid, vols in world["volumes"].items():
            for name, vol in list(vols.items()):
                if str(vol.get("vmid")) == vmid:
                    free_volume(world, f"{sid}:{name}")


def _owner(volid: str) -> str | None:
    """The VM id a volume name belongs to (pve-storage parse_volname's owner)."""
    match = re.search(r"(?:^|[:/])(?:vm|base)-(\d+)-(?:disk-\d+|cloudinit)[^/]*$", volid)
    return match.group(1) if match else None


def _run(
    world: World, vm: dict[str, Any], devices: list[str], at: float, facts: dict[str, Any]
) -> None:
    vm.update(status="running", started_at=at, pci_in_use=devices)
    record = vm["guest"]
    for key in ("user_data", "meta_data", "network_config"):
        record[key] = facts.get(key)
    current = guest.instance_id(record["user_data"], record["meta_data"], record["network_config"])
    before = record["first_boots"]
    boots = guest.first_boots_after(record["instance_id"], before, current)
    if boots != before or record.get("first_boot_at") is None:
        record["first_boot_at"] = at  # cloud-init's first boot of this instance begins
    record["first_boots"] = boots
    record["instance_id"] = current
    guest_netcfg.after_boot(record, new_instance=boots != before)
    if record["first_boots"] != before:  # a first boot: its models phase meets the store
        model_store.first_boot(world, vm)


def generated_user_data(config: dict[str, str]) -> str:
    """The user-data Proxmox generates from ciuser/cipassword/sshkeys (cloudinit/dump)."""
    from urllib.parse import unquote

    lines = [
        "#cloud-config",
        f"hostname: {config.get('name', 'vm')}",
        "manage_etc_hosts: true",
        "fqdn: " + config.get("name", "vm"),
    ]
    if config.get("ciuser"):
        lines.append(f"user: {config['ciuser']}")
    if config.get("cipassword"):
        lines.append("password: " + config["cipassword"])
    keys = [k for k in unquote(config.get("sshkeys", "")).splitlines() if k.strip()]
    if keys:
        lines.append("ssh_authorized_keys:")
        lines += [f"  - {k}" for k in keys]
    lines += ["chpasswd:", "  expire: False", "users:", "  - default", "package_upgrade: true"]
    return "\n".join(lines) + "\n"


def generated_network(config: dict[str, str]) -> str:
    """The NoCloud network-config (version 1) Proxmox writes from netN and ipconfigN
    (qemu-server src/PVE/QemuServer/Cloudinit.pm `nocloud_network`: each NIC with an
    ipconfig, named ethN, matched by its MAC; a static address split into address and
    netmask). The nameserver entry is left out: the guest model has no resolver."""
    lines = ["version: 1", "config:"]
    for key in sorted(k for k in config if NET_KEY.fullmatch(k)):
        index = key.removeprefix("net")
        ipconfig = config.get(f"ipconfig{index}")
        if not ipconfig:
            continue
        opts = pci.parse_prop(ipconfig)
        mac = guest_net.mac_of(config[key], 0, int(index))
        lines += ["    - type: physical", f"      name: eth{index}", f"      mac_address: '{mac}'"]
        lines.append("      subnets:")
        if opts.get("ip") == "dhcp":
            lines.append("      - type: dhcp4")
        elif "ip" in opts:
            address = ipaddress.IPv4Interface(opts["ip"])
            lines += ["      - type: static", f"        address: '{address.ip}'"]
            lines.append(f"        netmask: '{address.netmask}'")
            if "gw" in opts:
                lines.append(f"        gateway: '{opts['gw']}'")
    return "\n".join(lines) + "\n"


def guest_facts(state_dir: Path, world: World, vmid: str, vm: dict[str, Any]) -> dict[str, Any]:
    """What the guest will see at this boot: user-data, meta-data, network-config. The
    cicustom snippets reach it only on the cloud-init drive (provision.sim.cicustom)."""
    config = vm["config"]
    texts: dict[str, str] = {}
    facts: dict[str, Any] = {"user_data": None, "meta_data": None, "network_config": None}
    if cicustom.cloudinit_drive(vmid, config):
        texts = cicustom.custom_files(state_dir, world, config)[0]
        facts.update(
            user_data=generated_user_data(config), network_config=generated_network(config)
        )
    for key, value in config.items():
        if DISK_KEY.fullmatch(key) and "media=cdrom" in value and ":iso/" in value:
            path = file_path(state_dir, world, value.split(",")[0])
            try:
                files = read_cidata_iso(path) if path and path.is_file() else {}
            except ValueError:
                files = {}
            if files:
                facts.update(
                    user_data=files.get("user-data"),
                    meta_data=files.get("meta-data"),
                    network_config=files.get("network-config"),
                )
    facts["user_data"] = texts.get("user", facts["user_data"])
    facts["meta_data"] = texts.get("meta", facts["meta_data"])
    facts["network_config"] = texts.get("network", facts["network_config"])
    return facts


def start_checks(state_dir: Path, world: World, vmid: str, vm: dict[str, Any]) -> dict[str, Any]:
    """Accepting a start: the outcome to record in the task (error, warnings, devices).

    The checks in the order of qemu-server src/PVE/QemuServer.pm `vm_start_nolock`:
    Cloudinit.pm `apply_cloudinit_config` (the cicustom snippets are read, only for a
    cloud-init drive), then
    `config_to_command` (PCI.pm `print_hostpci_devices` before Virtiofs.pm `config`),
    then PCI.pm `reserve_pci_usage` and `prepare_pci_device`, then `start_all_virtiofsd`
    in `$run_qemu`. So a GPU in use by another VM is reported after a broken virtiofs
    mapping, a missing PCI mapping before it."""
    config, node = vm["config"], vm["node"]
    error = None
    if cicustom.cloudinit_drive(vmid, config):  # Cloudinit.pm generate_cloudinit_config
        error = cicustom.custom_files(state_dir, world, config)[1]
    chosen: dict[str, list[str]] = {}
    if error is None:
        chosen, error = pci.command_devices(world, node, vmid, config)
    if error is None:
        error = virtiofs.command_error(world, node, config)
    devices: list[str] = []
    if error is None:
        devices, error = pci.reserve_devices(world, node, vmid, chosen)
    if error is None:
        error = virtiofs.daemon_error(world, node, config)
    warnings = []
    if config.get("bios") == "ovmf" and "efidisk0" not in config:
        warnings.append("no efidisk configured! Using temporary efivars disk.")
    return {
        "pci": devices,
        "error": error,
        "warnings": warnings,
        "guest": guest_facts(state_dir, world, vmid, vm),
    }
