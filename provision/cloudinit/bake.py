"""The user-data of a bake (`aihost template bake NAME`) and the recipe's digest.

The same templates as a VM's, with `bake` set in the context: aihost-firstboot installs
the driver (DKMS-built for the image's kernels: no GPU needed), CUDA when asked and the
runtime (installed, not started), copies /etc/aihost/bake.json to baked.json, runs
`cloud-init clean --logs --machine-id --seed`, and power_state powers the VM off.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from provision.cloudinit.context import (
    HF_HOME,
    NVIDIA_REPOS,
    RUNTIME_IDS,
    bind_address,
    local_url,
)
from provision.cloudinit.document import RenderedUserData, environment, render_document
from provision.errors import InputError
from provision.inventory.model import RUNTIME_PORTS, Inventory, Recipe
from provision.inventory.runtime import LlamacppSettings, VllmSettings

LOGIN_USER = "aihost"


def recipe_of(inv: Inventory, name: str) -> Recipe:
    """The recipe called name, or an InputError naming the ones that exist."""
    if name not in inv.bake:
        known = ", ".join(sorted(inv.bake)) or "none"
        raise InputError(f"no bake recipe named '{name}' in the inventory (known: {known})")
    return inv.bake[name]


def baked_phases(recipe: Recipe) -> list[str]:
    """The first-boot phases a VM of this template skips when it asks for the same."""
    phases = ["driver", "reboot"] if recipe.driver else []
    return phases + (["runtime"] if recipe.runtime != "none" else [])


def bake_record(name: str, recipe: Recipe, digest: str) -> dict[str, Any]:
    """What /etc/aihost/baked.json says in the image (aihost-state baked compares it)."""
    return {
        "recipe": name,
        "digest": digest,
        "distro": recipe.distro,
        "driver": recipe.driver or "",
        "modules": recipe.modules,
        "cuda": recipe.cuda,
        "runtime": recipe.runtime,
        "version": recipe.runtime_version,
        "phases": baked_phases(recipe),
    }


def _context(name: str, recipe: Recipe, digest: str) -> dict[str, Any]:
    port = RUNTIME_PORTS[recipe.runtime]
    serves = recipe.runtime != "none"
    versions = {**recipe.versions.model_dump(), "driver_branch": recipe.driver or ""}
    vllm, llamacpp = VllmSettings(), LlamacppSettings()
    record = json.dumps(bake_record(name, recipe, digest), sort_keys=True) + "\n"
    return {
        "vm_name": f"bake-{name}",
        "bake": {"record": record, "modules": recipe.modules},
        "instance_id": "",
        "distro": recipe.distro,
        "nvidia_repo": NVIDIA_REPOS[recipe.distro],
        "gpu": recipe.driver is not None,
        "cuda": recipe.cuda,
        "cuda_toolkit": recipe.cuda or (recipe.driver is not None and recipe.runtime == "llamacpp"),
        "runtime": recipe.runtime,
        "models": [],
        "listen": "127.0.0.1",
        "port": port,
        "bind": bind_address("127.0.0.1", port) if serves else "",
        "url": local_url("127.0.0.1", port) if serves else "",
        "user": {"name": LOGIN_USER, "ssh_keys": [], "password": None},
        "context_tokens": None,
        "parallel": None,
        "vllm": vllm.model_dump(),
        "hf_token": None,
        "model_store": None,  # a template holds no models: its VMs mount the store
        "hf_home": HF_HOME,
        "runtime_id": RUNTIME_IDS.get(recipe.runtime),
        "versions": versions,
        "llamacpp": {
            "model_path": "",
            "model_url": None,
            "sha256": None,
            "context": llamacpp.context,
        },
    }


def render_bake(inv: Inventory, name: str, digest: str = "") -> RenderedUserData:
    """The bake user-data of recipe name, its baked.json recording digest."""
    recipe = recipe_of(inv, name)
    text = render_document(environment(inv.templates_dir), _context(name, recipe, digest))
    return RenderedUserData(text=text)


def recipe_digest(inv: Inventory, name: str) -> str:
    """sha256 of the canonical recipe and its bake user-data (rendered with an empty
    digest, since the user-data records the digest it is part of)."""
    recipe = recipe_of(inv, name)
    canonical = json.dumps(
        {"name": name, **recipe.model_dump(mode="json", by_alias=True)}, sort_keys=True
    )
    hashed = hashlib.sha256(canonical.encode())
    hashed.update(b"\0" + render_bake(inv, name).text.encode())
    return hashed.hexdigest()
