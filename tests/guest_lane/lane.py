"""Helpers of the guest lane: the host tools it needs and the cached guest image."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aihost_testing import run_aihost

from provision.sim import qemu_bridge
from provision.sim.qemu_guest import MEMORY_MB, QemuGuest, kvm_usable

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path(os.environ.get("AIHOST_GUEST_CACHE", "/var/cache/aihost-guest"))
TCG = not kvm_usable()
BOOT_TIMEOUT = 600 if TCG else 180
FIRST_BOOT_TIMEOUT = 1500 if TCG else 600
# Debian 12's virtiofsd (qemu-system-common, which qemu-system-x86 depends on); Proxmox
# runs the Rust virtiofsd at /usr/libexec/virtiofsd, which bookworm's archive lacks.
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"


def missing_tools() -> list[str]:
    """The host tools the lane needs that are not installed."""
    tools = ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4", "debugfs", VIRTIOFSD)
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


class Virtiofsd:
    """virtiofsd for one `virtiofsN` share, started as qemu-server starts it
    (src/PVE/QemuServer/Virtiofs.pm `start_virtiofsd`, qemu-server e6352be6): a listening
    unix socket made first and handed over as --fd (kept open "so that QEMU will wait for
    virtiofsd to start"), the mapping's path as the shared directory, submounts announced,
    cache and the other options left at their defaults. The Rust daemon's --shared-dir and
    --announce-submounts are spelt `-o source=` and `-o announce_submounts` by Debian 12's
    C virtiofsd; it logs to a file, not --syslog (no /dev/log on the lane's machines)."""

    def __init__(self, shared: Path, socket_path: Path, log: Path) -> None:
        self.shared, self.socket_path, self.log = shared, socket_path, log
        self.listener: socket.socket | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the daemon for one boot (it exits when QEMU closes the connection)."""
        self.stop()
        self.socket_path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.socket_path))
        listener.listen(1)
        fd = listener.fileno()
        argv = [VIRTIOFSD, f"--fd={fd}", "-o", f"source={self.shared}", "-o", "announce_submounts"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.listener = listener

    def qemu_args(self, index: int, tag: str) -> list[str]:
        """QEMU's arguments for share `virtiofs<index>`: Virtiofs.pm `config` (chardev and
        vhost-user-fs-pci, queue-size 1024, the mapping id as tag) and, as virtiofs needs
        the guest's RAM shared, QemuServer/Memory.pm `config` without NUMA or hotplug
        (a memfd backend of the VM's whole memory, share=on, as the machine's memory)."""
        # fmt: off
        return [
            "-object", f"memory-backend-memfd,id=virtiofs-mem,size={MEMORY_MB}M,share=on",
            "-machine", "memory-backend=virtiofs-mem",
            "-chardev", f"socket,id=virtiofs{index},path={self.socket_path}",
            "-device", f"vhost-user-fs-pci,queue-size=1024,chardev=virtiofs{index},tag={tag}",
        ]
        # fmt: on

    def stop(self) -> None:
        """End the daemon if it still runs, and close the socket."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None


@dataclass
class Lane:
    """A simulator whose agent endpoints a QEMU guest answers, and an inventory for it."""

    server: Any
    bridge: qemu_bridge.Bridge
    state: Path

    def inventory(self, vm: dict[str, Any]) -> Path:
        """An inventory with VM `lane` (vm: its settings over the lane's defaults)."""
        token = self.state / "token"
        token.write_text(self.server.token_secret + "\n")
        data = {
            "hosts": {
                "pve1": {
                    "api": self.server.url,
                    "tls": {"fingerprint": self.server.fingerprint},
                    "token": {"id": self.server.token_id, "secret_file": str(token)},
                }
            },
            "gpus": {"rtx4090": {"host": "pve1", "mapping": "rtx4090", "vram_gb": 24}},
            "vms": {
                "lane": {
                    "host": "pve1",
                    "template": "ubuntu-2404-cloud",
                    "cores": 2,
                    "memory_gb": 2,
                    "disk_gb": 40,
                    "distro": "debian-12",
                    **vm,
                }
            },
        }
        path = self.state / "inv.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def up(self, vm: dict[str, Any], *extra: str, output: str = "text") -> tuple[Any, float]:
        """`aihost -o output vm up lane *extra` and the seconds it took."""
        start = time.monotonic()
        result = run_aihost(
            "-i",
            str(self.inventory(vm)),
            "-o",
            output,
            "vm",
            "up",
            "lane",
            *extra,
            "--agent-timeout",
            str(BOOT_TIMEOUT + FIRST_BOOT_TIMEOUT),
        )
        return result, time.monotonic() - start

    def guest(self) -> QemuGuest:
        """The QEMU guest of the lane's one VM."""
        ((qemu, _started),) = self.bridge.guests.values()
        return qemu
