"""Build the simulator's initial world from a fixture YAML (see fixtures/default.yaml)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from provision.sim.state import World

DEFAULT_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "default.yaml"
DISK_KEY = re.compile(r"(scsi|virtio|sata|ide|efidisk|tpmstate)\d+")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
# Where each content type lives inside a dir-like storage.
CONTENT_DIRS = {
    "iso": "template/iso",
    "vztmpl": "template/cache",
    "import": "import",
    "snippets": "snippets",
    "backup": "dump",
}


def parse_size(text: str) -> int:
    """Bytes of a Proxmox size such as "3584M", "32G" or "1024" (bytes)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", text.strip())
    if match is None:
        raise ValueError(f"unable to parse size '{text}'")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_size(size: int) -> str:
    """The shortest exact Proxmox spelling of a size in bytes ("32G", "3584M")."""
    for unit in ("T", "G", "M", "K"):
        if size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


def load_fixture(path: Path | None) -> dict[str, Any]:
    """The fixture's YAML document (the default fixture when path is None)."""
    data = yaml.safe_load(Path(path or DEFAULT_FIXTURE).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not data.get("nodes"):
        raise ValueError(f"{path}: a simulator fixture needs a 'nodes' mapping")
    return data


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def storage_root(state_dir: Path, storage: str) -> Path:
    """The directory that stands for a storage's path on the node."""
    return Path(state_dir) / "storage" / storage


def _storages(fixture: dict[str, Any]) -> dict[str, Any]:
    """The fixture's storages as storage.cfg entries with a size."""
    storages: dict[str, Any] = {}
    for sid, spec in (fixture.get("storages") or {}).items():
        storages[sid] = {
            "type": spec.get("type", "dir"),
            "path": spec.get("path"),
            "content": ",".join(spec.get("content") or []),
            "shared": int(spec.get("shared", 0)),
            "nodes": spec.get("nodes"),
            "total": int(spec.get("total_gb", 100)) * 1024**3,
        }
    return storages


def _nodes(fixture: dict[str, Any]) -> dict[str, Any]:
    """The fixture's nodes: CPUs, memory, kernel command line, PCI devices, node config."""
    return {
        name: {
            "cpus": int(spec.get("cpus", 8)),
            "memory": int(spec.get("memory_gb", 32)) * 1024**3,
            "cmdline": spec.get("cmdline", ""),
            "pci": [dict(dev) for dev in spec.get("pci") or []],
            "config": {"description": spec.get("description", "")},
            "dirs": list(spec.get("dirs") or []),  # host directories (provision.sim.dirmap)
            "virtiofsd": bool(spec.get("virtiofsd", True)),  # /usr/libexec/virtiofsd there
        }
        for name, spec in fixture["nodes"].items()
    }


def _vms_and_volumes(
    fixture: dict[str, Any], nodes: dict[str, Any], storages: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The fixture's VMs and the disk volumes their configs name, per storage."""
    vms: dict[str, Any] = {}
    volumes: dict[str, dict[str, Any]] = {sid: {} for sid in storages}
    for vmid, spec in (fixture.get("vms") or {}).items():
        config = {k: _config_value(v) for k, v in (spec.get("config") or {}).items()}
        vms[str(vmid)] = new_vm(spec.get("node", next(iter(nodes))), config)
        for key, value in config.items():
            if DISK_KEY.fullmatch(key) and "media=cdrom" not in value:
                volid = value.split(",")[0]
                size_m = re.search(r"(?:^|,)size=([^,]+)", value)
                sid, _, name = volid.partition(":")
                volumes.setdefault(sid, {})[name] = {
                    "size": parse_size(size_m.group(1)) if size_m else 4 * 1024**3,
                    "vmid": int(vmid),
                    "format": "qcow2" if name.endswith(".qcow2") else "raw",
                }
    return vms, volumes


def _make_storage_dirs(fixture: dict[str, Any], storages: dict[str, Any], state_dir: Path) -> None:
    """Re-create the path-based storages' content directories and the fixture's files."""
    root = Path(state_dir) / "storage"
    shutil.rmtree(root, ignore_errors=True)
    for sid, spec in storages.items():
        if spec["path"]:
            for content in spec["content"].split(","):
                if content in CONTENT_DIRS:
                    (root / sid / CONTENT_DIRS[content]).mkdir(parents=True, exist_ok=True)
    for entry in fixture.get("files") or []:
        sid, _, name = entry["volid"].partition(":")
        content, _, filename = name.partition("/")
        target = root / sid / CONTENT_DIRS[content] / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        size = int(float(entry.get("size_mb", 1)) * 1024**2)
        target.write_bytes(b"QFI\xfb" + b"\0" * max(0, size - 4))


def build_world(fixture: dict[str, Any], state_dir: Path, now: float) -> World:
    """A fresh world from a fixture; re-creates the storage directories under state_dir."""
    storages = _storages(fixture)
    nodes = _nodes(fixture)
    vms, volumes = _vms_and_volumes(fixture, nodes, storages)
    _make_storage_dirs(fixture, storages, state_dir)
    return {
        "schema": 1,
        "created": now,
        "cluster": fixture.get("cluster") or {},
        "version": str(fixture.get("version") or ""),  # GET /version; "" is 9.1.3
        "nodes": nodes,
        "storages": storages,
        "volumes": volumes,
        "vms": vms,
        "mappings": {"pci": {}, "dir": {}},
        "tasks": {},
        "access": fixture.get("access") or {},
        "faults": list(fixture.get("faults") or []),
        "fault_hits": {},
        "offline": [],
        "violations": [],
        "durations": dict(fixture.get("durations") or {}),
        "counters": {"pid": 4000, "exec": 1000},
    }


def new_vm(node: str, config: dict[str, str]) -> dict[str, Any]:
    """A VM record: its config, pending changes, run state, lock and guest-model facts."""
    return {
        "node": node,
        "config": config,
        "pending": {},
        "pending_delete": [],
        "status": "stopped",
        "started_at": None,
        "guest": {
            "user_data": None,
            "meta_data": None,
            "network_config": None,
            "instance_id": None,
            "first_boots": 0,
            "exec": {},
        },
    }
