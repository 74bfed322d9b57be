"""The guest model's facts about one VM (see provision.sim.guest): what the simulator
knows of it (GuestView), what a command returns (ExecResult), whether its agent answers,
its NoCloud instance-id, and what its user-data installed (Guest)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import yaml

from provision.sim.guest_net import property_flags
from provision.sim.guest_state import Timing, first_boot_line
from provision.sim.guest_userdata import (
    CloudConfig,
    driver_version,
    parse_user_data,
    signed_driver,
)

AGENT_NOT_RUNNING = "QEMU guest agent is not running"
HEALTH_PATH = "/usr/local/bin/aihost-health"
_TRUE = {"1", "on", "yes", "true"}
CMDLINE = (
    "BOOT_IMAGE=/boot/vmlinuz-6.8.0-49-generic root=LABEL=cloudimg-rootfs ro "
    "console=tty1 console=ttyS0\n"
)


@dataclass
class GuestView:
    """What the simulator knows about one VM, as the guest model needs it.

    config is the configuration the VM runs with (not pending changes). first_boots is the
    number of first boots the simulator counted (see `first_boots_after`).
    """

    vmid: int
    config: dict[str, str]
    user_data: str | None
    meta_data: str | None
    gpus: list[dict[str, Any]]
    seconds_since_start: float
    boot_delay: float
    ip: str | None
    running: bool = True
    network_config: str | None = None
    first_boots: int = 1
    models_pull: dict[str, Any] | None = None  # provision.sim.model_store.first_boot
    timing: Timing | None = None  # None: first boot is over at once (guest_timeline)
    baked: dict[str, Any] | None = None  # the disk's /etc/aihost/baked.json (guest_disk)
    image_packages: frozenset[str] = frozenset()  # installed on the disk (a bake's packages)


@dataclass(frozen=True)
class ExecResult:
    """A finished command in the guest, as agent/exec-status reports it."""

    exitcode: int
    out: str
    err: str


def agent_enabled(config: dict[str, str]) -> bool:
    """True when the config's `agent` option enables the guest agent device."""
    flag = property_flags(config.get("agent"), "enabled").get("enabled", "0")
    return flag.lower() in _TRUE


def secure_boot(config: dict[str, str]) -> bool:
    """True when the VM boots OVMF with pre-enrolled Secure Boot keys."""
    if config.get("bios") != "ovmf":
        return False
    efi = property_flags(config.get("efidisk0"), "file")
    return efi.get("pre-enrolled-keys", "0").lower() in _TRUE


def agent_available(view: GuestView) -> bool:
    """True when `agent/ping` succeeds; otherwise the API answers AGENT_NOT_RUNNING."""
    if not (view.running and agent_enabled(view.config)):
        return False
    if view.seconds_since_start < view.boot_delay:
        return False
    cloud = parse_user_data(view.user_data)
    if view.timing is not None and first_boot_line(cloud, view.timing).agent_away(
        view.timing.elapsed
    ):
        return False  # packages not installed yet, or the driver's reboot
    return cloud.valid and (
        cloud.installs("qemu-guest-agent") or "qemu-guest-agent" in view.image_packages
    )


def instance_id(user_data: str | None, meta_data: str | None, network_config: str | None) -> str:
    """The NoCloud instance-id the guest sees.

    With a meta-data file, its `instance-id` (cloud-init's default "nocloud" when it has
    none); without one, Proxmox writes SHA-1 hex of user-data + network-config.
    """
    if meta_data is not None:
        try:
            meta = yaml.safe_load(meta_data)
        except yaml.YAMLError:
            meta = None
        if isinstance(meta, dict) and meta.get("instance-id") is not None:
            return str(meta["instance-id"])
        return "nocloud"
    text = (user_data or "") + (network_config or "")
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def first_boots_after(recorded_id: str | None, first_boots: int, current_id: str) -> int:
    """The first-boot count after a boot: cloud-init redoes its first boot when the
    instance-id differs from the one it recorded (the simulator keeps both per VM)."""
    return first_boots + 1 if recorded_id != current_id else first_boots


@dataclass(frozen=True)
class Guest:
    """What the guest made of its user-data: the driver, and whether it sees the GPU."""

    view: GuestView
    cloud: CloudConfig
    driver: str | None
    gpu_ok: bool  # the driver is loaded and sees the attached GPU(s)


def guest_of(view: GuestView) -> Guest:
    """The guest model of a VM view."""
    cloud = parse_user_data(view.user_data)
    driver = driver_version(cloud)
    loads = driver is not None and (not secure_boot(view.config) or signed_driver(cloud))
    return Guest(view, cloud, driver, bool(loads and view.gpus))
