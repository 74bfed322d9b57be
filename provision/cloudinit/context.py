"""The values the templates see for one VM: checked, derived, never escaped here."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from provision.cloudinit.escape import one_line
from provision.cloudinit.passwd import MASKED, hash_password
from provision.errors import InputError
from provision.inventory.model import SecretRef, Vm

MODELS_DIR = "/var/lib/aihost/models"
# vLLM's HF_HOME: Hugging Face's default (huggingface_hub constants.py: $XDG_CACHE_HOME or
# ~/.cache, then huggingface; the unit's HOME=/var/lib/vllm), or the store's directory.
# The hub cache it downloads into is HF_HOME/hub; the models phase watches it.
HF_HOME = "/var/lib/vllm/.cache/huggingface"
# The runtime users' fixed uid and gid (each its own number, the same in every VM aihost
# makes and bakes), so the files in a shared model store have one owner: Debian Policy
# 9.2.2 "UID and GID classes" leaves 65536-4294967293 to local accounts (adduser allocates
# none there by default), clear of Debian/Ubuntu's system (100-999), user (1000-59999),
# on-demand (60000-64999) ids and nobody (65534); below Proxmox VE's unprivileged
# containers' 100000-165535 (/etc/subuid root:100000:65536), as the store is on the node.
RUNTIME_IDS = {"ollama": 65600, "vllm": 65601, "llamacpp": 65602}
NVIDIA_REPOS = {"ubuntu-24.04": "ubuntu2404", "ubuntu-22.04": "ubuntu2204", "debian-12": "debian12"}


def local_url(listen: str, port: int) -> str:
    """The URL the guest itself uses to reach a runtime bound to listen:port."""
    address = ipaddress.ip_address(listen)
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{host}:{port}"


def bind_address(listen: str, port: int) -> str:
    """host:port as a runtime's bind option (IPv6 in brackets)."""
    address = ipaddress.ip_address(listen)
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _gguf_target(vm: Vm) -> tuple[str, str | None, str | None]:
    """(path of the GGUF in the guest, URL to download it from, its sha256)."""
    settings = vm.llamacpp
    url = settings.download_url
    if url is None:
        if not settings.model_path:
            raise InputError(
                "runtime llamacpp needs llamacpp.hf_repo/hf_file or model_url (downloaded on "
                "first boot, with sha256) or model_path (a GGUF in the image)"
            )
        return one_line(settings.model_path, "llamacpp.model_path"), None, None
    url = one_line(url, "the GGUF download URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"llamacpp.model_url must be an http(s) URL, got {url!r}")
    if settings.model_path:
        return one_line(settings.model_path, "llamacpp.model_path"), url, settings.sha256
    name = PurePosixPath(parts.path).name
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "model.gguf"
    return f"{MODELS_DIR}/{safe}", url, settings.sha256


def _secrets(
    vm_name: str, vm: Vm, secret_reader: Callable[[SecretRef, str], str]
) -> tuple[str | None, str | None, list[str]]:
    """(password hash, HF token, the secret values to mask) for the user-data."""
    secrets: list[str] = []
    password = None
    if vm.user.password is not None:
        plain = secret_reader(vm.user.password, f"the password of user {vm.user.name}")
        # the guest gets the SHA-512 crypt hash only; a masked render keeps the mask
        password = plain if plain == MASKED else hash_password(vm_name, vm.user.name, plain)
        secrets += [plain, password]
    hf_token = None
    if vm.hf_token is not None and vm.runtime == "vllm":
        hf_token = one_line(secret_reader(vm.hf_token, "the Hugging Face token"), "hf_token")
        secrets.append(hf_token)
    return password, hf_token, secrets


def build_context(
    vm_name: str,
    vm: Vm,
    distro: str,
    secret_reader: Callable[[SecretRef, str], str],
    instance_id: str | None,
    store_tag: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The template context for one VM and the secret values placed in it. store_tag is
    the virtiofs tag of the node's model store mounted on MODELS_DIR (None: no store)."""
    models = [one_line(m, "a model name") for m in vm.models]
    keys = [one_line(k, "an SSH key") for k in vm.user.ssh_keys]
    password, hf_token, secrets = _secrets(vm_name, vm, secret_reader)
    if vm.runtime == "vllm" and not models:
        raise InputError("runtime vllm serves the first of models:, and none is listed")
    gguf_path, gguf_url, gguf_sha = (
        _gguf_target(vm) if vm.runtime == "llamacpp" else ("", None, None)
    )
    served = models[:1]
    if vm.runtime == "llamacpp" and not served:
        served = [PurePosixPath(gguf_path).name]
    port = vm.runtime_port
    gpu = bool(vm.gpu_names)
    context: dict[str, Any] = {
        "vm_name": vm_name,
        "bake": None,  # a VM; provision.cloudinit.bake renders a template's bake
        "instance_id": instance_id or "",
        "distro": distro,
        "nvidia_repo": NVIDIA_REPOS[distro],
        "gpu": gpu,
        "cuda": vm.cuda,
        "cuda_toolkit": vm.cuda or (gpu and vm.runtime == "llamacpp"),
        "runtime": vm.runtime,
        "models": models if vm.runtime == "ollama" else served,
        "listen": vm.listen,
        "port": port,
        "bind": bind_address(vm.listen, port) if vm.runtime != "none" else "",
        "url": local_url(vm.listen, port) if vm.runtime != "none" else "",
        "user": {"name": vm.user.name, "ssh_keys": keys, "password": password},
        "context_tokens": vm.settings["context"],
        "parallel": vm.settings["parallel"],
        "vllm": {
            "gpu_memory_utilization": vm.vllm.gpu_memory_utilization,
            "max_model_len": vm.vllm.max_model_len,
        },
        "hf_token": hf_token,
        "model_store": (
            {"tag": store_tag, "dir": MODELS_DIR} if store_tag and vm.runtime != "none" else None
        ),
        "hf_home": f"{MODELS_DIR}/huggingface" if store_tag else HF_HOME,
        "runtime_id": RUNTIME_IDS.get(vm.runtime),
        "versions": vm.versions.model_dump(),
        "llamacpp": {
            "model_path": gguf_path,
            "model_url": gguf_url,
            "sha256": gguf_sha,
            "context": vm.llamacpp.context,
        },
    }
    return context, secrets
