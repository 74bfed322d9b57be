"""Helpers of the guest lane: the host tools it needs and the cached guest image."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from provision.sim.qemu_guest import kvm_usable

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path(os.environ.get("AIHOST_GUEST_CACHE", "/var/cache/aihost-guest"))
TCG = not kvm_usable()
BOOT_TIMEOUT = 600 if TCG else 180
FIRST_BOOT_TIMEOUT = 1500 if TCG else 600


def missing_tools() -> list[str]:
    """The host tools the lane needs that are not installed."""
    tools = ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4", "debugfs")
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


class Disk:
    """A powered-off guest's disk (a qcow2 overlay chain) read without booting it: a raw
    copy (qemu-img convert) read with debugfs, as the guest facts sheet reads logs."""

    def __init__(self, qcow2: Path, workdir: Path) -> None:
        self.raw = workdir / f"{qcow2.stem}.raw"
        convert = ["qemu-img", "convert", "-O", "raw", str(qcow2), str(self.raw)]
        subprocess.run(convert, check=True, timeout=900)

    def _debugfs(self, request: str) -> tuple[str, bool]:
        run = subprocess.run(
            ["debugfs", "-R", request, str(self.raw)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return run.stdout, "File not found" not in run.stderr and run.returncode == 0

    def read(self, path: str) -> str | None:
        """The file's text, or None when the disk has no such file."""
        text, found = self._debugfs(f"cat {path}")
        return text if found else None

    def names(self, path: str) -> list[str] | None:
        """The names in a directory (without . and ..), or None when it does not exist."""
        text, found = self._debugfs(f"ls -p {path}")
        if not found:
            return None
        fields = (line.split("/") for line in text.splitlines() if line.startswith("/"))
        return sorted(f[5] for f in fields if len(f) > 5 and f[5] not in (".", ".."))

    def remove(self) -> None:
        """Drop the raw copy."""
        self.raw.unlink(missing_ok=True)
