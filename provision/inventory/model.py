"""The inventory format v1: hosts, GPUs, VMs. Pydantic models, strict about unknown keys."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from provision.inventory.bake import Recipe, check_bakes
from provision.inventory.guest import CloudUser, Network  # re-exported: see __all__
from provision.inventory.hosts import (  # re-exported: see __all__
    Host,
    LocalPath,
    ModelStore,
    PasswordAuth,
    SecretRef,
    SshSettings,
    StorageSettings,
    Strict,
    TlsSettings,
    TokenAuth,
    UserDataSecret,
)
from provision.inventory.pveformats import (
    DISK_MAX_GB,
    MEMORY_MAX_MIB,
    MEMORY_MIN_MIB,
    VMID_MAX,
    VMID_MIN,
    ConfigId,
    DnsName,
    PveTag,
    config_id,
    one_line,
)
from provision.inventory.runtime import (  # re-exported: see __all__
    DEFAULT_VERSIONS,
    RUNTIME_PORTS,
    Distro,
    LlamacppSettings,
    Runtime,
    RuntimeVersions,
    VllmSettings,
    runtime_settings,
)

PCI_RE = re.compile(r"(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})(?:\.([0-7]))?")
# a model name as the runtime takes it (ollama tag, Hugging Face repo id); the renderer
# quotes it for YAML, sh and systemd, so one line is what the inventory must guarantee
ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=256), AfterValidator(one_line)
]


class Gpu(Strict):
    """A GPU on a node: by cluster resource mapping name, or by raw PCI address."""

    host: str
    mapping: ConfigId | None = None
    pci: str | None = None
    vram_gb: float = Field(gt=0, le=1024)
    model: Annotated[str, StringConstraints(max_length=128), AfterValidator(one_line)] | None = None

    @field_validator("pci", mode="before")
    @classmethod
    def _pci(cls, value: Any) -> Any:
        if value is None:
            return None
        match = PCI_RE.fullmatch(value) if isinstance(value, str) else None
        if not match:
            raise PydanticCustomError(
                "pci_address",
                "PCI address must look like 0000:01:00 (domain:bus:slot, all functions) or "
                "01:00.0; list them with `aihost host check` or `lspci -D`",
            )
        domain, bus, slot, function = match.groups()
        address = f"{(domain or '0000').lower()}:{bus.lower()}:{slot.lower()}"
        return f"{address}.{function}" if function is not None else address

    @model_validator(mode="after")
    def _one_way(self) -> Gpu:
        if (self.mapping is None) == (self.pci is None):
            raise PydanticCustomError(
                "gpu_ref",
                "give exactly one of mapping: NAME (works with API tokens) or pci: 0000:01:00",
            )
        return self


class Vm(Strict):
    """A VM aihost manages, after `defaults.vm` was merged in."""

    host: str
    vmid: int | None = Field(None, ge=VMID_MIN, le=VMID_MAX)
    template: DnsName | None = None
    image: str | None = None
    cores: int = Field(4, ge=1, le=512)
    memory_gb: float = 16
    disk_gb: int = Field(64, ge=4, le=DISK_MAX_GB)
    network: Network = Network()
    user: CloudUser = CloudUser()
    gpu: ConfigId | list[ConfigId] | None = None

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu(cls, value: Any) -> Any:
        """One clear error for a bad name, rather than one per member of the union."""
        names = value if isinstance(value, list) else [value]
        for name in names:
            if value is not None and not isinstance(name, str):
                raise PydanticCustomError("gpu_name", "gpu must be a GPU name or a list of names")
            if isinstance(name, str):
                config_id(name)
        return value

    runtime: Runtime = "ollama"
    models: list[ModelName] = []
    model_store: bool = True  # a GPU VM uses its host's model_store: when it has one
    listen: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535)
    distro: Distro = "ubuntu-24.04"
    cuda: bool = False
    context: int | None = Field(None, ge=256, le=2**24)
    parallel: int | None = Field(None, ge=1, le=1024)
    vllm: VllmSettings = VllmSettings()
    llamacpp: LlamacppSettings = LlamacppSettings()
    versions: RuntimeVersions = RuntimeVersions()
    hf_token: UserDataSecret | None = None
    start_timeout: int | None = Field(None, ge=10, le=86400)
    tags: list[PveTag] = []

    @field_validator("memory_gb")
    @classmethod
    def _memory(cls, value: float) -> float:
        mib = int(value * 1024)  # what desired_vm writes as `memory`
        if not MEMORY_MIN_MIB <= mib <= MEMORY_MAX_MIB:
            raise PydanticCustomError(
                "memory_range",
                f"memory_gb must give {MEMORY_MIN_MIB} MiB to {MEMORY_MAX_MIB // 1024 // 1024} "
                f"TiB (Proxmox's limits), got {value!r}",
            )
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise PydanticCustomError(
                "listen", "listen must be an IP address: 127.0.0.1 (default) or 0.0.0.0"
            ) from None
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        # pve-storage-id, then an import volume's file name
        if value is not None and not re.fullmatch(
            r"[a-zA-Z][a-zA-Z0-9_.-]*[a-zA-Z0-9]:import/[a-zA-Z0-9_+-][a-zA-Z0-9_.+-]*", value
        ):
            raise PydanticCustomError(
                "image", "image must be a volume with content import, e.g. local:import/noble.qcow2"
            )
        return value

    @model_validator(mode="after")
    def _source(self) -> Vm:
        if (self.template is None) == (self.image is None):
            raise PydanticCustomError(
                "vm_source",
                "give exactly one of template: TEMPLATE_NAME (clone) or image: "
                "STORAGE:import/FILE (import a cloud image)",
            )
        return self

    @property
    def gpu_names(self) -> list[str]:
        """The GPUs this VM wants, as a list (gpu: may be one name or several)."""
        if self.gpu is None:
            return []
        return [self.gpu] if isinstance(self.gpu, str) else list(self.gpu)

    @model_validator(mode="after")
    def _gguf(self) -> Vm:
        if self.runtime == "llamacpp" and not self.llamacpp.has_source:
            raise PydanticCustomError(
                "gguf_source",
                "runtime llamacpp needs its GGUF model: llamacpp: {hf_repo: OWNER/REPO, "
                "hf_file: FILE.gguf, sha256: HEX} (or model_url: URL with sha256), or "
                "model_path: /path/in/the/image.gguf",
            )
        return self

    @property
    def settings(self) -> dict[str, int | None]:
        """Context length and parallel sequences the runtime runs with (runtime_settings)."""
        return runtime_settings(self.runtime, self.context, self.parallel, self.vllm, self.llamacpp)

    @property
    def runtime_port(self) -> int:
        """The port the runtime listens on (inventory, or the runtime's default)."""
        return self.port or RUNTIME_PORTS[self.runtime]


class Defaults(Strict):
    """Shared values merged under each VM (a VM's own keys win)."""

    vm: dict[str, Any] = {}


class Inventory(Strict):
    """The whole inventory file."""

    version: Literal[1] = 1
    templates_dir: LocalPath | None = None
    defaults: Defaults = Defaults()
    hosts: dict[str, Host]
    gpus: dict[ConfigId, Gpu] = {}
    vms: dict[DnsName, Vm] = {}
    bake: dict[DnsName, Recipe] = {}
    source: Path | None = Field(None, exclude=True)

    def vm(self, name: str) -> Vm:
        """The VM called name, or an InputError naming the ones that exist."""
        from provision.errors import InputError

        if name not in self.vms:
            known = ", ".join(sorted(self.vms)) or "none"
            raise InputError(f"no VM named '{name}' in the inventory (known: {known})")
        return self.vms[name]

    def gpu(self, name: str) -> Gpu:
        """The GPU called name, or an InputError naming the ones that exist."""
        from provision.errors import InputError

        if name not in self.gpus:
            known = ", ".join(sorted(self.gpus)) or "none"
            raise InputError(f"no GPU named '{name}' in the inventory (known: {known})")
        return self.gpus[name]

    def host(self, name: str) -> Host:
        """The host called name."""
        from provision.errors import InputError

        if name not in self.hosts:
            raise InputError(f"no host named '{name}' in the inventory")
        return self.hosts[name]

    def model_store_of(self, vm_name: str) -> ModelStore | None:
        """The host's model store when VM vm_name uses it (a GPU VM that did not opt out)."""
        vm = self.vm(vm_name)
        store = self.hosts[vm.host].model_store
        return store if store is not None and vm.gpu_names and vm.model_store else None

    def node_of(self, host_name: str) -> str:
        """The Proxmox node name of a host entry (node:, else the entry's name)."""
        return self.hosts[host_name].node or host_name


__all__ = [
    "DEFAULT_VERSIONS",
    "RUNTIME_PORTS",
    "CloudUser",
    "Defaults",
    "Gpu",
    "Host",
    "Inventory",
    "LlamacppSettings",
    "ModelStore",
    "Network",
    "PasswordAuth",
    "Recipe",
    "RuntimeVersions",
    "SecretRef",
    "SshSettings",
    "StorageSettings",
    "Strict",
    "TlsSettings",
    "TokenAuth",
    "UserDataSecret",
    "Vm",
    "VllmSettings",
    "check_bakes",
]
