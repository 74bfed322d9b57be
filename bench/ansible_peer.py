"""The Ansible peer: playbooks with community.proxmox.proxmox_kvm doing what aihost does.

`vm up` becomes clone, then a second task with `update: true` (clone ignores every other
option), an optional disk resize (proxmox_disk), then `state: started`. Ansible's files are
kept in a temporary folder; it verifies the simulator's certificate through
REQUESTS_CA_BUNDLE with `validate_certs: true`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from bench.procs import Proc, child_env, run, script_argv

KVM = "community.proxmox.proxmox_kvm"
DISK = "community.proxmox.proxmox_disk"
# Proxmox keys the module takes as a dict of numbered devices.
DEVICE_FAMILIES = (
    "hostpci",
    "net",
    "ide",
    "scsi",
    "sata",
    "virtio",
    "ipconfig",
    "serial",
    "usb",
    "parallel",
    "numa",
    "audio",
)
# Proxmox keys the module takes under the same name, as a string or an int.
PLAIN = {
    "name",
    "machine",
    "bios",
    "cpu",
    "ciuser",
    "cicustom",
    "description",
    "scsihw",
    "boot",
    "vga",
    "ostype",
    "hotplug",
    "citype",
    "startup",
    "rng0",
    "watchdog",
}
INTS = {"cores", "memory", "sockets", "vcpus", "balloon", "cpuunits", "cpulimit", "shares"}
BOOLS = {"onboot", "tablet", "kvm", "localtime", "numa_enabled", "protection", "acpi"}


class Unsafe(str):
    """A string Ansible must not template (written with the !unsafe tag)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value))
)


def module_params(config: dict[str, str]) -> dict[str, Any]:
    """Translate Proxmox config keys into proxmox_kvm parameters; ValueError if it cannot."""
    params: dict[str, Any] = {}
    for key, value in config.items():
        family = re.sub(r"\d+$", "", key)
        if family in DEVICE_FAMILIES and family != key:
            params.setdefault(family, {})[key] = Unsafe(value)
        elif key in PLAIN:
            params[key] = Unsafe(value)
        elif key in INTS:
            params[key] = int(value)
        elif key in BOOLS:
            params[key] = value not in ("0", "no", "off", "false")
        elif key == "agent":
            params["agent"] = Unsafe(value)
        elif key == "tags":
            params["tags"] = [t for t in re.split(r"[;, ]", value) if t]
        elif key == "sshkeys":
            params["sshkeys"] = Unsafe(unquote(value))  # the module URL-encodes it itself
        elif key == "nameserver":
            params["nameservers"] = value.split()
        elif key == "searchdomain":
            params["searchdomains"] = value.split()
        elif key == "efidisk0":
            params["efidisk0"] = _efidisk(value)
            params.setdefault("bios", "ovmf")
        else:
            raise ValueError(f"proxmox_kvm has no parameter for the Proxmox key {key!r}")
    return params


def _efidisk(value: str) -> dict[str, Any]:
    storage, _, rest = value.partition(":")
    options = dict(p.split("=", 1) for p in rest.split(",")[1:] if "=" in p)
    disk: dict[str, Any] = {"storage": storage, "format": options.get("format", "raw")}
    if "efitype" in options:
        disk["efitype"] = options["efitype"]
    if "pre-enrolled-keys" in options:
        disk["pre_enrolled_keys"] = options["pre-enrolled-keys"] in ("1", "yes", "true")
    return disk


def _auth(auth: dict[str, Any]) -> dict[str, Any]:
    return {
        "api_host": auth["host"],
        "api_port": auth["port"],
        "api_user": auth["user"],
        "api_token_id": auth["token_name"],
        "api_token_secret": Unsafe(auth["token_value"]),
        "validate_certs": True,
    }


def _play(name: str, auth: dict[str, Any], tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "module_defaults": {KVM: {**_auth(auth), "node": auth["node"]}, DISK: _auth(auth)},
            "tasks": tasks,
        }
    ]


def vm_up_playbook(
    auth: dict[str, Any],
    *,
    template: str,
    vmid: int,
    name: str,
    storage: str,
    config: dict[str, str],
    deletes: list[str],
    resize: dict[str, str] | None,
    start_timeout: int = 300,
) -> list[dict]:
    """Clone the template, set the config (GPU included), resize, start."""
    tasks: list[dict[str, Any]] = [
        {
            "name": "clone the template",
            KVM: {
                "clone": template,
                "newid": vmid,
                "name": name,
                "full": True,
                "storage": storage,
                "timeout": 1800,
            },
        },
        {
            "name": "configure (GPU, cloud-init, hardware)",
            KVM: {"vmid": vmid, "update": True, "update_unsafe": True, **module_params(config)},
        },
    ]
    if deletes:
        tasks.append({"name": "remove options", KVM: {"vmid": vmid, "delete": ",".join(deletes)}})
    if resize:
        tasks.append(
            {
                "name": "grow the boot disk",
                DISK: {
                    "vmid": vmid,
                    "disk": resize["disk"],
                    "size": resize["size"],
                    "state": "resized",
                },
            }
        )
    tasks.append(
        {"name": "start", KVM: {"vmid": vmid, "state": "started", "timeout": start_timeout}}
    )
    return _play(f"vm up {name}", auth, tasks)


def swap_playbook(
    auth: dict[str, Any], *, holder: int, target: int, key: str, value: str, timeout: int = 300
) -> list[dict]:
    """Shut the holder down, detach the GPU, attach it to the target, start the target."""
    tasks = [
        {
            "name": "shut the holder down",
            KVM: {"vmid": holder, "state": "stopped", "timeout": timeout},
        },
        {"name": "detach the GPU", KVM: {"vmid": holder, "delete": key}},
        {
            "name": "attach the GPU",
            KVM: {"vmid": target, "update": True, "hostpci": {key: Unsafe(value)}},
        },
        {"name": "start the target", KVM: {"vmid": target, "state": "started", "timeout": timeout}},
    ]
    return _play("gpu swap", auth, tasks)


def write_playbook(path: Path, plays: list[dict]) -> Path:
    """Write a playbook (YAML, values Ansible must not template tagged !unsafe)."""
    path.write_text(yaml.dump(plays, Dumper=_Dumper, sort_keys=False))
    return path


def ansible_env(workdir: Path, ca_file: str) -> dict[str, str]:
    """Environment for ansible-playbook: its files in workdir, the simulator's CA trusted."""
    home = workdir / "ansible"
    home.mkdir(parents=True, exist_ok=True)
    return child_env(
        {
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "REQUESTS_CA_BUNDLE": ca_file,
        }
    )


def playbook_argv(path: Path) -> list[str]:
    """The ansible-playbook command for a playbook on localhost."""
    return [*script_argv("ansible-playbook"), "-i", "localhost,", str(path)]


def run_playbook(path: Path, env: dict[str, str]) -> Proc:
    """Run a playbook and time it."""
    return run(playbook_argv(path), env=env, cwd=path.parent)


def available() -> bool:
    """True when ansible-playbook and the community.proxmox collection are installed."""
    try:
        script_argv("ansible-playbook")
        import ansible_collections.community.proxmox  # noqa: F401
    except (FileNotFoundError, ImportError):
        return False
    return True
