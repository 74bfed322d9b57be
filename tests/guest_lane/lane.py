"""Helpers of the guest lane: the host tools it needs and the cached guest image."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path(os.environ.get("AIHOST_GUEST_CACHE", "/var/cache/aihost-guest"))


def missing_tools() -> list[str]:
    """The host tools the lane needs that are not installed."""
    tools = ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4")
    return [tool for tool in tools if shutil.which(tool) is None]


def build_image(cache: Path = DEFAULT_CACHE) -> Path:
    """The cached image directory (vmlinuz, initrd, disk.img), built when missing."""
    run = subprocess.run(
        ["sh", str(HERE / "build_image.sh"), str(cache)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"build_image.sh failed: {run.stderr.strip()[-2000:]}")
    return Path(run.stdout.strip().splitlines()[-1])
