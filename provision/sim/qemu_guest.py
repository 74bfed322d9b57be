"""A real guest under QEMU (not a model): aihost's cidata ISO, a real qemu-guest-agent on a
virtio-serial socket, KVM when usable, TCG otherwise. Used by `sim serve --guest qemu`
(provision.sim.qemu_bridge) and the guest lane (tests/guest_lane).

The image (vmlinuz, initrd, disk.img) comes from tests/guest_lane/build_image.sh
(debootstrap of Debian 12, cached by package list). Each VM boots a qcow2 overlay of the
cached raw image, so the image itself stays clean; QEMU runs with -no-reboot, so a guest
reboot ends the process and the caller boots it again (as Proxmox keeps a VM running).
The command line follows the guest facts sheet ("How the guest was built").
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.delivery.iso import build_cidata_iso

MEMORY_MB = 2048


def kvm_usable() -> bool:
    """True when /dev/kvm opens read-write and the CPU shows vmx or svm; else TCG.

    Both are needed: on this project's machines /dev/kvm exists without hardware
    virtualisation, and QEMU with -accel kvm then hangs before the kernel prints a line."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "vmx" in flags or "svm" in flags


@dataclass
class ExecResult:
    """A finished guest-exec."""

    exitcode: int
    out: str
    err: str


class AgentSocket:
    """The QEMU guest agent protocol (JSON lines) on a unix socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        """Drop the connection (the next call reconnects)."""
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buffer = b""

    def _connect(self, timeout: float) -> socket.socket:
        if self.sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(self.path))
            self.sock = sock
            self.buffer = b""
            self._sync(timeout)
        self.sock.settimeout(timeout)
        return self.sock

    def _sync(self, timeout: float) -> None:
        """guest-sync-delimited: discard stale output up to the 0xFF marker, then the id."""
        assert self.sock is not None
        self.sock.settimeout(timeout)
        token = int(time.time() * 1000) % 2**31
        self.sock.sendall(
            json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": token}}).encode()
        )
        data = b""
        while b"\xff" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("agent socket closed")
            data += chunk
        self.buffer = data.split(b"\xff", 1)[1]
        while True:
            reply = self._read_line()
            if reply.get("return") == token:
                return

    def _read_line(self) -> dict[str, Any]:
        assert self.sock is not None
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("agent socket closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line) if line.strip() else self._read_line()

    def call(
        self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 10
    ) -> Any:
        """One agent command; its `return` value, or RuntimeError with the agent's error."""
        sock = self._connect(timeout)
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        try:
            sock.sendall(json.dumps(message).encode() + b"\n")
            reply = self._read_line()
        except (OSError, ValueError):
            self.close()
            raise
        if "error" in reply:
            raise RuntimeError(reply["error"].get("desc", str(reply["error"])))
        return reply.get("return")


class QemuGuest:
    """One boot of the guest image with a cidata ISO; the overlay survives reboots.

    base (a qcow2, e.g. another guest's overlay after a bake) backs the overlay instead of
    the image's disk.img, as a Proxmox linked clone of a template's disk."""

    def __init__(
        self, image: Path, workdir: Path, name: str = "guest", base: Path | None = None
    ) -> None:
        self.image = image
        self.base = base
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.overlay = self.dir / f"{name}.qcow2"
        self.iso = self.dir / f"{name}-cidata.iso"
        self.socket = self.dir / f"{name}-qga.sock"
        self.serial = self.dir / f"{name}-serial.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.agent = AgentSocket(self.socket)
        self.boots = 0
        self.extra_args: list[str] = []  # more devices (the guest lane's virtiofs share)
        self.mac: str | None = None  # the NIC's MAC address (QEMU's default when None)

    def write_cidata(self, user_data: str, meta_data: str, network: str | None = None) -> None:
        """aihost's own cidata ISO (provision.delivery.iso) with this user- and meta-data
        (and network-config, when given)."""
        files = {"user-data": user_data.encode(), "meta-data": meta_data.encode()}
        if network is not None:
            files["network-config"] = network.encode()
        self.iso.write_bytes(build_cidata_iso(files))

    def start(self) -> None:
        """Boot (the first call creates the overlay of the cached image)."""
        if not self.overlay.exists():
            disk, fmt = (
                (str(self.base), "qcow2") if self.base else (str(self.image / "disk.img"), "raw")
            )
            create = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", disk]
            subprocess.run([*create, str(self.overlay)], check=True, timeout=60)
        self.socket.unlink(missing_ok=True)
        accel = (
            ["-accel", "kvm", "-cpu", "host"] if kvm_usable() else ["-accel", "tcg", "-cpu", "max"]
        )
        # fmt: off
        command = [
            "qemu-system-x86_64", *accel, "-smp", "2", "-m", str(MEMORY_MB), "-no-reboot",
            "-kernel", str(self.image / "vmlinuz"), "-initrd", str(self.image / "initrd"),
            "-append", "console=ttyS0 root=/dev/vda rw net.ifnames=0",
            "-drive", f"file={self.overlay},format=qcow2,if=virtio",
            "-drive", f"file={self.iso},media=cdrom,if=ide,readonly=on",
            "-nic", "user,model=virtio-net-pci" + (f",mac={self.mac}" if self.mac else ""),
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,path={self.socket},server=on,wait=off,id=qga0",
            "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            "-serial", f"file:{self.serial}.{self.boots}", "-display", "none",
            *self.extra_args,
        ]
        # fmt: on
        self.proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.boots += 1
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"qemu did not start: {err.strip()}")
            time.sleep(0.2)

    def running(self) -> bool:
        """True while the QEMU process runs (-no-reboot: a guest reboot ends it)."""
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float) -> bool:
        """Wait until QEMU exits (the guest powered off or rebooted); False on timeout."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        self.agent.close()
        return True

    def shut_down(self, timeout: float = 180) -> None:
        """Shut the guest down as Proxmox's shutdown and reboot do (the guest's OS powers
        off, its writes reach the disk), killing QEMU when it has not within timeout."""
        if self.running():
            self.poweroff()
            self.wait_exit(timeout)
        self.stop()

    def stop(self) -> None:
        """Kill QEMU if it still runs (a test's cleanup)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.agent.close()

    def poweroff(self) -> None:
        """Start `systemctl poweroff` in the guest through guest-exec (not waiting for it:
        the shutdown ends the agent). guest-shutdown gives no reply, and in this lane's
        Debian 12 guest it did not power off."""
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            self.agent.call("guest-exec", {"path": "systemctl", "arg": ["poweroff"]})
        self.agent.close()

    def ping(self) -> bool:
        """True when the agent answers guest-ping."""
        try:
            self.agent.call("guest-ping", timeout=3)
        except (OSError, RuntimeError, ValueError):
            self.agent.close()
            return False
        return True

    def wait_agent(self, timeout: float) -> float:
        """Seconds until the agent answered; TimeoutError when it did not in time."""
        start = time.monotonic()
        while not self.ping():
            if not self.running():
                raise RuntimeError("the guest stopped before its agent answered")
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"the guest agent did not answer within {timeout:.0f} s")
            time.sleep(2)
        return time.monotonic() - start

    def exec(self, argv: list[str], timeout: float = 120) -> ExecResult:
        """guest-exec with captured output, then guest-exec-status until it exited."""
        started = self.agent.call(
            "guest-exec", {"path": argv[0], "arg": argv[1:], "capture-output": True}
        )
        deadline = time.monotonic() + timeout
        while True:
            status = self.agent.call("guest-exec-status", {"pid": started["pid"]})
            if status.get("exited"):
                return ExecResult(
                    int(status.get("exitcode", -1)),
                    base64.b64decode(status.get("out-data", "")).decode("utf-8", "replace"),
                    base64.b64decode(status.get("err-data", "")).decode("utf-8", "replace"),
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{argv} did not finish within {timeout:.0f} s")
            time.sleep(0.5)

    def read_file(self, path: str) -> str | None:
        """A guest file's text through guest-file-open/read (None when it does not exist)."""
        try:
            handle = self.agent.call("guest-file-open", {"path": path, "mode": "r"})
        except RuntimeError:
            return None
        chunks = []
        try:
            while True:
                part = self.agent.call("guest-file-read", {"handle": handle, "count": 65536})
                chunks.append(base64.b64decode(part.get("buf-b64", "")))
                if part.get("eof"):
                    break
        finally:
            self.agent.call("guest-file-close", {"handle": handle})
        return b"".join(chunks).decode("utf-8", "replace")

    def serial_text(self) -> str:
        """The serial console of every boot so far (for failure messages)."""
        return "".join(
            Path(f"{self.serial}.{n}").read_text(errors="replace")
            for n in range(self.boots)
            if Path(f"{self.serial}.{n}").exists()
        )
