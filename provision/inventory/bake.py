"""Bake recipes (`bake:`): what `aihost template bake NAME` puts into a Proxmox template
(the NVIDIA driver built by DKMS, CUDA, an LLM runtime installed but not started), and
the checks that tie recipes to hosts and VMs."""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from provision.inventory.guest import Network
from provision.inventory.hosts import Strict
from provision.inventory.pveformats import DISK_MAX_GB, DNS_NAME_RE, VMID_MAX, VMID_MIN
from provision.inventory.runtime import DEFAULT_VERSIONS, Distro, Runtime

# pve-storage-id, then an import volume's file name (as vms.NAME.image)
IMAGE_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_.-]*[a-zA-Z0-9]:import/[a-zA-Z0-9_+-][a-zA-Z0-9_.+-]*")


class RecipeVersions(Strict):
    """The runtime versions a recipe bakes (the driver branch is the recipe's `driver:`)."""

    ollama: str = Field(DEFAULT_VERSIONS["ollama"], pattern=r"^\d+\.\d+\.\d+(-rc\d+)?$")
    vllm: str = Field(DEFAULT_VERSIONS["vllm"], pattern=r"^\d+\.\d+(\.\d+)*(\.post\d+)?$")
    llamacpp: str = Field(DEFAULT_VERSIONS["llamacpp"], pattern=r"^b\d+$")


class Recipe(Strict):
    """One `bake:` entry: the source to start from and what to install into it.

    `from:` is a cloud image (STORAGE:import/FILE, imported) or a template's name
    (full-cloned). `driver:` is the NVIDIA branch as vms.NAME.versions.driver_branch
    writes it (null: no driver); `modules:` open (Turing and newer) or proprietary
    (Maxwell to Volta): the bake VM has no GPU to tell."""

    source: str = Field(alias="from")
    host: str
    distro: Distro = "ubuntu-24.04"
    driver: str | None = Field(DEFAULT_VERSIONS["driver_branch"], pattern=r"^\d{3}$")
    modules: Literal["open", "proprietary"] = "open"
    cuda: bool = False
    runtime: Runtime = "ollama"
    versions: RecipeVersions = RecipeVersions()
    vmid: int | None = Field(None, ge=VMID_MIN, le=VMID_MAX)
    cores: int = Field(4, ge=1, le=512)
    memory_gb: int = Field(8, ge=1, le=4096)
    disk_gb: int = Field(32, ge=4, le=DISK_MAX_GB)
    network: Network = Network()

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if IMAGE_RE.fullmatch(value) or DNS_NAME_RE.fullmatch(value):
            return value
        raise PydanticCustomError(
            "bake_from",
            "from must be a cloud image volume (STORAGE:import/FILE, e.g. "
            "local:import/noble.qcow2) or the name of a template to clone",
        )

    @property
    def image(self) -> str | None:
        """The cloud image to import, or None when the recipe starts from a template."""
        return self.source if IMAGE_RE.fullmatch(self.source) else None

    @property
    def runtime_version(self) -> str:
        """The version of the recipe's runtime ('' for none)."""
        return "" if self.runtime == "none" else str(getattr(self.versions, self.runtime))


def check_bakes(inv: Any, fail: Any) -> None:
    """Each recipe's host exists; a recipe's vmid is no VM's."""
    hosts = sorted(inv.hosts)
    vmids = {vm.vmid: name for name, vm in inv.vms.items() if vm.vmid is not None}
    for name, recipe in inv.bake.items():
        if recipe.host not in inv.hosts:
            close = difflib.get_close_matches(recipe.host, hosts, n=1)
            fail(
                ("bake", name, "host"),
                f"bake.{name}.host: unknown host '{recipe.host}'",
                f"did you mean '{close[0]}'?" if close else f"known: {', '.join(hosts)}",
            )
        if recipe.vmid is not None and recipe.vmid in vmids:
            fail(
                ("bake", name, "vmid"),
                f"bake.{name}.vmid: {recipe.vmid} is already used by vms.{vmids[recipe.vmid]}",
                "give the recipe its own vmid, or leave vmid out to get a free one",
            )
