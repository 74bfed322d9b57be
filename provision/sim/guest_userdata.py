"""What the simulated guest makes of its cloud-init user-data (part of the guest MODEL).

Reads a `#cloud-config` document (or a MIME multipart one, or a shell script) the way
cloud-init would and extracts only what the model needs: installed packages, runcmd lines,
written files, and from those the NVIDIA driver and LLM runtime the guest would end up with.
"""

from __future__ import annotations

import base64
import binascii
import copy
import email
import functools
import gzip
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

DRIVER_MARKERS = (
    "nvidia-driver",
    "nvidia-headless",
    "ubuntu-drivers install",
    "nvidia-kernel-open-dkms",
    "nvidia-open",
)
# Real release numbers of each driver branch (Ubuntu / NVIDIA repository builds).
BRANCH_VERSIONS = {
    "470": "470.256.02",
    "535": "535.183.01",
    "550": "550.127.05",
    "560": "560.35.03",
    "565": "565.57.01",
    "570": "570.133.07",
    "575": "575.57.08",
    "580": "580.65.06",
}
DEFAULT_DRIVER = "550.127.05"
DEBIAN_DRIVER = "535.216.01"  # Debian 12's own `nvidia-driver` package stops at 535
RUNTIME_UNITS = {
    "ollama": "/etc/systemd/system/ollama.service",
    "vllm": "/etc/systemd/system/vllm.service",
    "llamacpp": "/etc/systemd/system/llama-server.service",
}
MODELS_PATH = "/etc/aihost/models"
DEFAULT_PORTS = {"ollama": 11434, "vllm": 8000, "llamacpp": 8080}
_VERSION = re.compile(r"(\d{3}\.\d{2,3}(?:\.\d{2})?)")
_DEBIAN = re.compile(r"(?<![\w-])nvidia-driver(?![\w-])")
_BRANCH = re.compile(r"nvidia[-:](?:[a-z]+-)*?(\d{3})(?!\d)")


@dataclass
class CloudConfig:
    """The parts of a user-data document the guest model acts on."""

    valid: bool = True  # False: cloud-init could not parse it (no modules ran)
    packages: dict[str, str | None] = field(default_factory=dict)  # name -> pinned version
    runcmd: list[str] = field(default_factory=list)  # each entry as one shell line
    files: dict[str, str] = field(default_factory=dict)  # write_files path -> content
    hostname: str | None = None
    # package_update/upgrade (or the old apt_update/apt_upgrade): cloud-init's package
    # module runs apt-get update for them, and whenever `packages` lists any
    apt_update: bool = False

    def installs(self, package: str) -> bool:
        """True when `packages` lists the package (any version)."""
        return package in self.packages


def parse_user_data(text: str | None) -> CloudConfig:
    """Parse user-data as cloud-init would; invalid YAML gives CloudConfig(valid=False).

    The guest model reads one VM's user-data on every agent request, several times: the
    parse of a text is kept (a copy is returned, so a caller may change it), since the
    simulator's time counts as the client's in the benchmark."""
    if text is None:
        return CloudConfig()
    return copy.deepcopy(_parse(text))


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> CloudConfig:
    body = text.lstrip("\ufeff")
    if body.startswith("## template: jinja"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
    if body.lower().startswith("content-type: multipart"):
        return _parse_multipart(body)
    if body.startswith("#!"):
        return CloudConfig(runcmd=[body])
    if not body.startswith("#cloud-config"):
        return CloudConfig()  # cloud-init ignores unknown user-data types
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError:
        return CloudConfig(valid=False)
    if data is None:
        return CloudConfig()
    if not isinstance(data, dict):
        return CloudConfig(valid=False)
    return _from_mapping(data)


def _parse_multipart(body: str) -> CloudConfig:
    merged = CloudConfig()
    for part in email.message_from_string(body).walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        ctype = part.get_content_type()
        if ctype == "text/cloud-config":
            one = parse_user_data(
                text if text.startswith("#cloud-config") else "#cloud-config\n" + text
            )
        elif ctype == "text/x-shellscript":
            one = CloudConfig(runcmd=[text])
        else:
            continue
        if not one.valid:
            return one
        merged.packages.update(one.packages)
        merged.runcmd.extend(one.runcmd)
        merged.files.update(one.files)
        merged.hostname = one.hostname or merged.hostname
        merged.apt_update = merged.apt_update or one.apt_update
    return merged


def _from_mapping(data: dict[str, Any]) -> CloudConfig:
    config = CloudConfig()
    _add_packages(config, data.get("packages"))
    keys = ("package_update", "package_upgrade", "apt_update", "apt_upgrade")
    config.apt_update = any(data.get(key) is True for key in keys)
    for entry in data.get("runcmd") or []:
        if isinstance(entry, list):
            config.runcmd.append(" ".join(str(x) for x in entry))
        elif entry is not None:
            config.runcmd.append(str(entry))
    for item in data.get("write_files") or []:
        if isinstance(item, dict) and item.get("path"):
            path = str(item["path"])
            content = _decode(item.get("content", ""), str(item.get("encoding", "text")))
            if item.get("append") and path in config.files:
                content = config.files[path] + content
            config.files[path] = content
    name = data.get("hostname") or data.get("fqdn")
    config.hostname = str(name).split(".")[0] if name else None
    return config


def _add_packages(config: CloudConfig, entries: Any) -> None:
    """packages: strings ("name" or "name=version"), [name, version] lists, {apt: [...]}."""
    if isinstance(entries, dict):
        for manager, items in entries.items():
            if manager in ("apt", "yum", "dnf", "zypper"):
                _add_packages(config, items)
        return
    for entry in entries or []:
        if isinstance(entry, str):
            name, _, version = entry.partition("=")
            config.packages[name.strip()] = version.strip() or None
        elif isinstance(entry, list | tuple) and entry:
            config.packages[str(entry[0])] = str(entry[1]) if len(entry) > 1 else None
        elif isinstance(entry, dict):
            _add_packages(config, entry)


def _decode(content: Any, encoding: str) -> str:
    raw: bytes
    text = content if isinstance(content, str) else str(content or "")
    try:
        if encoding in ("b64", "base64"):
            raw = base64.b64decode(text)
        elif encoding in ("gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
            raw = gzip.decompress(base64.b64decode(text))
        else:
            return text
    except (binascii.Error, OSError, EOFError):
        return ""
    return raw.decode("utf-8", "replace")


def _runcmd_texts(config: CloudConfig) -> list[str]:
    """runcmd lines plus the content of write_files scripts they run, and of the scripts
    those run in turn (aihost's runcmd is one script that calls the driver installer)."""
    texts = list(config.runcmd)
    seen: set[str] = set()
    index = 0
    while index < len(texts):
        for path, body in config.files.items():
            if path not in seen and path in texts[index]:
                seen.add(path)
                texts.append(body)
        index += 1
    return texts


def driver_version(config: CloudConfig) -> str | None:
    """The NVIDIA driver version the user-data installs, or None when it installs none."""
    if not config.valid:
        return None
    for name, pinned in config.packages.items():
        if any(marker in name for marker in DRIVER_MARKERS):
            if pinned and (match := _VERSION.search(pinned)):
                return match.group(1)
            return DEBIAN_DRIVER if name == "nvidia-driver" else _branch_version(name)
    for text in _runcmd_texts(config):
        for line in text.splitlines():
            if any(marker in line for marker in DRIVER_MARKERS):
                return DEBIAN_DRIVER if _DEBIAN.search(line) else _branch_version(line)
    return None


def signed_driver(config: CloudConfig) -> bool:
    """True when the driver comes from `ubuntu-drivers install` (Canonical-signed modules
    that load under Secure Boot); packages from apt or NVIDIA's repository build with DKMS."""
    return any("ubuntu-drivers install" in text for text in _runcmd_texts(config))


def _branch_version(text: str) -> str:
    match = _BRANCH.search(text)
    if not match:
        return DEFAULT_DRIVER
    branch = match.group(1)
    return BRANCH_VERSIONS.get(branch, f"{branch}.00.01")
