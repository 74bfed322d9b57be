"""The shared model store of a node (part of the guest MODEL): a host directory that
virtiofs passes into VMs (provision.sim.virtiofs), where the runtime keeps its models.

The store is node state: `world["nodes"][NODE]["store"]` maps a host directory to the
models its files hold ({name: bytes}), and outlives every VM. A VM uses it when (1) its
config has a virtiofsN whose directory mapping has a path on the VM's node, (2) its
user-data writes a systemd mount unit (`Type=virtiofs`) for that mapping's tag (qemu-server
Virtiofs.pm `config`: the tag is the dirid), and (3) the runtime's model directory is
below that mount point (Ollama's OLLAMA_MODELS, vLLM's HF_HOME, llama-server's `-m`).
A first boot finds what the store holds and downloads the rest (`first_boot`); once its
models phase succeeds the store holds the models (`settle`), so a re-created VM, or
another VM on that node with the same model, downloads 0 bytes.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

from provision.sim.guest_models import model_bytes
from provision.sim.guest_runtime import runtime_of
from provision.sim.guest_userdata import RUNTIME_UNITS, parse_user_data
from provision.sim.state import World
from provision.sim.virtiofs import shares

_MODEL_DIR = {
    "ollama": re.compile(r"OLLAMA_MODELS=\"?([^\s\"]+)"),
    "vllm": re.compile(r"HF_HOME=\"?([^\s\"]+)"),
    "llamacpp": re.compile(r"llama-server\s+-m\s+\"?([^\s\"]+)"),
}


def model_sizes(names: list[str]) -> dict[str, int]:
    """{name: bytes} of the models, as the guest model sizes them (guest_models)."""
    return {name: model_bytes(name) for name in names}


def _mounts(files: dict[str, str]) -> dict[str, str]:
    """{tag: mount point} of the virtiofs mount units the user-data writes."""
    out = {}
    for path, text in files.items():
        if not (path.startswith("/etc/systemd/system/") and path.endswith(".mount")):
            continue
        keys = dict(
            line.split("=", 1) for line in text.splitlines() if "=" in line and line[:1] != "#"
        )
        if keys.get("Type", "").strip() == "virtiofs" and keys.get("What"):
            out[keys["What"].strip()] = posixpath.normpath(keys.get("Where", "").strip())
    return out


def store_path(world: World, vm: dict[str, Any]) -> str | None:
    """The host directory the VM's runtime keeps its models in, or None (no store)."""
    cloud = parse_user_data(vm["guest"].get("user_data"))
    runtime = runtime_of(cloud)
    if runtime is None:
        return None
    found = _MODEL_DIR[runtime.name].search(cloud.files.get(RUNTIME_UNITS[runtime.name], ""))
    if found is None:
        return None
    model_dir = posixpath.normpath(found.group(1))
    mounts = _mounts(cloud.files)
    for share in shares(world, vm["node"], vm["config"]):
        where = mounts.get(share["dirid"])
        if where and (model_dir == where or model_dir.startswith(where.rstrip("/") + "/")):
            return posixpath.normpath(share["path"])
    return None


def _held(world: World, node: str, path: str) -> dict[str, int]:
    stores: dict[str, dict[str, int]] = world["nodes"][node].setdefault("store", {})
    return stores.setdefault(path, {})


def stored_models(
    world: World, vm_record: dict[str, Any], models: Mapping[str, int] | Iterable[str]
) -> dict[str, int]:
    """{name: bytes} of each model the VM finds in its node's model store (0s without a
    store). models is {name: size in bytes}, or names (sized by guest_models)."""
    sizes = models if isinstance(models, Mapping) else model_sizes(list(models))
    path = store_path(world, vm_record)
    held = _held(world, vm_record["node"], path) if path is not None else {}
    return {name: min(size, held.get(name, 0)) for name, size in sizes.items()}


def stored_model_bytes(
    world: World, vm_record: dict[str, Any], models: Mapping[str, int] | Iterable[str]
) -> int:
    """Bytes of models the VM finds in its node's model store (0 without a store)."""
    return sum(stored_models(world, vm_record, models).values())


def first_boot(world: World, vm: dict[str, Any]) -> None:
    """At the start of a first boot: what the models phase will find and download."""
    runtime = runtime_of(parse_user_data(vm["guest"].get("user_data")))
    sizes = model_sizes(runtime.models if runtime else [])
    stored = stored_models(world, vm, sizes)
    vm["guest"]["models_pull"] = {
        "store": store_path(world, vm),
        "models": sizes,
        "stored": stored,
        "stored_bytes": sum(stored.values()),
        "downloaded_bytes": sum(sizes.values()) - sum(stored.values()),
        "settled": False,
    }


def settle(world: World, vm: dict[str, Any], state_text: str | None) -> None:
    """Once the first boot's models phase succeeded, the store holds its models."""
    pull = vm["guest"].get("models_pull")
    if not pull or pull["settled"] or not state_text:
        return
    phase = json.loads(state_text).get("phases", {}).get("models") or {}
    if phase.get("status") != "ok":
        return
    pull["settled"] = True
    if pull["store"]:
        _held(world, vm["node"], pull["store"]).update(pull["models"])
