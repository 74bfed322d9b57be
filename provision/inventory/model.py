"""The inventory format v1: hosts, GPUs, VMs. Pydantic models, strict about unknown keys."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

NAME_PATTERN = r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,61}[a-zA-Z0-9])?$"
PCI_RE = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})(?:\.([0-7]))?$")
FINGERPRINT_RE = re.compile(r"^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$")
TOKEN_ID_RE = re.compile(r"^[^\s@!]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$")

Runtime = Literal["ollama", "vllm", "llamacpp", "none"]
Distro = Literal["ubuntu-24.04", "ubuntu-22.04", "debian-12"]
RUNTIME_PORTS = {"ollama": 11434, "vllm": 8000, "llamacpp": 8080, "none": 0}
# The versions the guest installs unless the inventory pins others (vms.NAME.versions).
# Ollama: release tag without the v (ollama.com/download/...?version=); vLLM: PyPI
# version; llama.cpp: release tag (bNNNN); driver_branch: NVIDIA's Ubuntu server branch.
DEFAULT_VERSIONS = {"ollama": "0.32.15", "vllm": "0.33.0", "llamacpp": "b10830",
                    "driver_branch": "580"}


class Strict(BaseModel):
    """Base: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _refuse_inline(data: Any, keys: tuple[str, ...], what: str) -> Any:
    if isinstance(data, dict):
        for key in keys:
            if key in data:
                raise PydanticCustomError(
                    "inline_secret",
                    f"{what} written inline; secrets never go in the inventory: write "
                    "secret_env: VARIABLE_NAME or secret_file: /path/to/file instead",
                )
    return data


class SecretRef(Strict):
    """Where a secret is read from: an environment variable or a file, never the inventory."""

    secret_env: str | None = None
    secret_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, data: Any) -> Any:
        return _refuse_inline(data, ("secret", "value", "password", "token"), "a secret")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.secret_env is None) == (self.secret_file is None):
            raise PydanticCustomError(
                "secret_source", "give exactly one of secret_env: VARIABLE or secret_file: PATH"
            )
        return self


class TokenAuth(SecretRef):
    """API token: id `user@realm!name`; secret from env or file."""

    id: str

    @field_validator("id")
    @classmethod
    def _token_id(cls, value: str) -> str:
        if not TOKEN_ID_RE.match(value):
            raise PydanticCustomError(
                "token_id", "token id must look like user@realm!tokenname, e.g. aihost@pve!prov"
            )
        return value


class PasswordAuth(SecretRef):
    """Password (ticket) login, needed for raw `pci:` GPUs: only root@pam may set them."""

    user: str = "root@pam"


class TlsSettings(Strict):
    """TLS verification stays on; pin a self-signed certificate or name a CA file."""

    fingerprint: str | None = None
    ca_file: Path | None = None

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not FINGERPRINT_RE.match(value):
            raise PydanticCustomError(
                "fingerprint",
                "fingerprint must be the certificate's SHA-256 as 32 hex pairs joined by ':' "
                "(pvenode cert info, or the fingerprint aihost prints when verification fails)",
            )
        return value.upper()


class SshSettings(Strict):
    """SSH/SFTP to the node, for snippet upload and host checks. Host keys are always checked."""

    user: str = "root"
    host: str | None = None
    port: int = Field(22, ge=1, le=65535)
    key: Path | None = None
    known_hosts: Path | None = None


class StorageSettings(Strict):
    """Proxmox storage ids: VM disks, cloud-init snippets, ISO images."""

    disks: str = "local-lvm"
    snippets: str = "local"
    iso: str = "local"


class Host(Strict):
    """One Proxmox node (or cluster entry point) aihost talks to."""

    api: str
    node: str | None = None
    token: TokenAuth | None = None
    password: PasswordAuth | None = None
    tls: TlsSettings = TlsSettings()
    ssh: SshSettings | None = None
    storage: StorageSettings = StorageSettings()
    cloudinit_delivery: Literal["auto", "iso", "snippet"] = "auto"
    sim_fixture: str | None = None

    @field_validator("api")
    @classmethod
    def _api(cls, value: str) -> str:
        if value == "sim":
            return value
        if value.startswith("http://"):
            raise PydanticCustomError(
                "api_scheme", "Proxmox only speaks HTTPS: write https://HOST:8006"
            )
        if not re.match(r"^https://[^/\s:]+(:\d+)?/?$", value):
            raise PydanticCustomError(
                "api_url", "api must be https://HOST:8006 (or 'sim' for the built-in simulator)"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _auth(self) -> Host:
        if self.api != "sim" and self.token is None and self.password is None:
            raise PydanticCustomError(
                "auth_missing",
                "host needs token: {id: user@realm!name, secret_env: VAR} "
                "(or password: {user: root@pam, secret_env: VAR})",
            )
        return self


class Gpu(Strict):
    """A GPU on a node: by cluster resource mapping name, or by raw PCI address."""

    host: str
    mapping: str | None = None
    pci: str | None = None
    vram_gb: float = Field(gt=0, le=1024)
    model: str | None = None

    @field_validator("pci", mode="before")
    @classmethod
    def _pci(cls, value: Any) -> Any:
        if value is None:
            return None
        match = PCI_RE.match(str(value))
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


class Network(Strict):
    """The VM's first NIC and its cloud-init IP configuration."""

    bridge: str = "vmbr0"
    ip: str = "dhcp"
    gateway: str | None = None
    vlan: int | None = Field(None, ge=1, le=4094)
    nameserver: str | None = None

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        if value == "dhcp":
            return value
        try:
            ipaddress.IPv4Interface(value)
        except ValueError:
            raise PydanticCustomError(
                "ip", "ip must be dhcp or an address with prefix, e.g. 192.168.1.50/24"
            ) from None
        if "/" not in value:
            raise PydanticCustomError("ip", "add the prefix length, e.g. 192.168.1.50/24")
        return value

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise PydanticCustomError("gateway", "gateway must be an IPv4 address") from None
        return value


class CloudUser(Strict):
    """The login user cloud-init creates in the guest."""

    name: str = Field("aihost", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    ssh_keys: list[str] = []
    password: SecretRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("password"), str):
            return _refuse_inline({"password": 1}, ("password",), "the user's password")
        return data

    @field_validator("ssh_keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not re.match(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-\S+|sk-\S+) [A-Za-z0-9+/=]+", key):
                raise PydanticCustomError(
                    "ssh_key", "ssh_keys entries must be public keys: 'ssh-ed25519 AAAA... comment'"
                )
        return keys


class VllmSettings(Strict):
    """vLLM serving options."""

    gpu_memory_utilization: float = Field(0.9, gt=0.1, le=1.0)
    max_model_len: int = Field(8192, ge=256)


class LlamacppSettings(Strict):
    """llama.cpp server options: a GGUF model by path in the guest or by URL."""

    model_path: str | None = None
    model_url: str | None = None
    context: int = Field(8192, ge=256)


class RuntimeVersions(Strict):
    """Pinned versions of what first boot installs (defaults: DEFAULT_VERSIONS)."""

    ollama: str = Field(DEFAULT_VERSIONS["ollama"], pattern=r"^\d+\.\d+\.\d+(-rc\d+)?$")
    vllm: str = Field(DEFAULT_VERSIONS["vllm"], pattern=r"^\d+\.\d+(\.\d+)*(\.post\d+)?$")
    llamacpp: str = Field(DEFAULT_VERSIONS["llamacpp"], pattern=r"^b\d+$")
    driver_branch: str = Field(DEFAULT_VERSIONS["driver_branch"], pattern=r"^\d{3}$")


class Vm(Strict):
    """A VM aihost manages, after `defaults.vm` was merged in."""

    host: str
    vmid: int | None = Field(None, ge=100, le=999999999)
    template: str | None = None
    image: str | None = None
    cores: int = Field(4, ge=1, le=512)
    memory_gb: float = Field(16, gt=0)
    disk_gb: int = Field(64, ge=4)
    network: Network = Network()
    user: CloudUser = CloudUser()
    gpu: str | list[str] | None = None
    runtime: Runtime = "ollama"
    models: list[str] = []
    listen: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535)
    distro: Distro = "ubuntu-24.04"
    cuda: bool = False
    context: int | None = Field(None, ge=256)
    vllm: VllmSettings = VllmSettings()
    llamacpp: LlamacppSettings = LlamacppSettings()
    versions: RuntimeVersions = RuntimeVersions()
    hf_token: SecretRef | None = None
    start_timeout: int | None = Field(None, ge=10)
    tags: list[str] = []

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
        if value is not None and not re.match(r"^[a-zA-Z][\w.-]*:import/[\w.+-]+$", value):
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

    @property
    def runtime_port(self) -> int:
        """The port the runtime listens on (inventory, or the runtime's default)."""
        return self.port or RUNTIME_PORTS[self.runtime]


class Defaults(Strict):
    """Shared values merged under each VM (a VM's own keys win)."""

    vm: dict[str, Any] = {}


VmName = Annotated[str, Field(pattern=NAME_PATTERN)]


class Inventory(Strict):
    """The whole inventory file."""

    version: Literal[1] = 1
    templates_dir: Path | None = None
    defaults: Defaults = Defaults()
    hosts: dict[str, Host]
    gpus: dict[str, Gpu] = {}
    vms: dict[VmName, Vm] = {}
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

    def node_of(self, host_name: str) -> str:
        """The Proxmox node name of a host entry (node:, else the entry's name)."""
        return self.hosts[host_name].node or host_name
