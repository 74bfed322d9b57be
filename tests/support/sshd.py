"""A real OpenSSH server on 127.0.0.1 for tests: own host key, own authorized_keys, sftp.

`sshd_binary()` finds /usr/sbin/sshd (skips the test, or fails it when
AIHOST_REQUIRE_TOOLS=1). `running_sshd(base)` starts `sshd -D -e -f CONFIG` on a free
port with key-only auth (no PAM, no passwords), waits for its banner, and stops it after.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
START_TIMEOUT = 10.0

CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
MaxAuthTries 10
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


def sshd_binary() -> str:
    """Path of OpenSSH's sshd; skip the test (fail under AIHOST_REQUIRE_TOOLS=1) if absent."""
    found = shutil.which("sshd") or next(
        (p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), None
    )
    problem = None
    if found is None:
        problem = "OpenSSH server (sshd) is not installed; apt-get install openssh-server"
    elif os.geteuid() != 0:
        problem = "the real-sshd tests start sshd as root (it must switch to the login user)"
    if problem is None:
        assert found is not None
        return found
    if os.environ.get("AIHOST_REQUIRE_TOOLS") == "1":
        pytest.fail(problem + " and AIHOST_REQUIRE_TOOLS=1")
    pytest.skip(problem)


def write_private_key(path: Path, kind: str = "ed25519") -> str:
    """Write a new unencrypted OpenSSH private key (0600) and PATH.pub; return the public line."""
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(f"unknown key kind {kind!r}")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = public.decode() + " aihost-test"
    path.with_name(path.name + ".pub").write_text(line + "\n")
    return line


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sshd:
    """A running sshd and the files a client needs to reach it."""

    port: int
    base: Path
    host_key: Path
    host_public: str
    authorized_keys: Path
    client_key: Path
    known_hosts: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def known_hosts_line(self, host: str = "127.0.0.1") -> str:
        """A known_hosts line for this server ("[127.0.0.1]:PORT ssh-ed25519 AAAA...")."""
        return f"[{host}]:{self.port} {self.host_public}"

    def log(self) -> str:
        """What sshd wrote to stderr so far (for assertion messages)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        """Terminate sshd and wait for it (kill after a few seconds)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_for_banner(proc: subprocess.Popen[bytes], port: int, log_file: Path) -> bool:
    """True once sshd answers with its banner; False if it exited (e.g. the port was taken)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1) as sock,
        ):
            if sock.recv(64).startswith(b"SSH-2.0-"):
                return True
        time.sleep(0.02)
    raise RuntimeError(f"sshd did not answer on port {port}: {log_file.read_text()}")


def start_sshd(base: Path, *, host_key_kind: str = "ed25519", extra_config: str = "") -> Sshd:
    """Start sshd under base (keys, config, logs live there); the caller must stop() it.
    extra_config: more sshd_config lines (e.g. `SetEnv PATH=...`)."""
    binary = sshd_binary()
    base.mkdir(parents=True, exist_ok=True)
    if not PRIVSEP_DIR.is_dir():
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    host_key = base / f"ssh_host_{host_key_kind}_key"
    host_public = " ".join(write_private_key(host_key, host_key_kind).split()[:2])
    client_key = base / "id_ed25519"
    authorized = base / "authorized_keys"
    authorized.write_text(write_private_key(client_key) + "\n")
    log_file = base / "sshd.log"
    for _attempt in range(5):
        port = free_port()
        config = base / "sshd_config"
        config.write_text(
            CONFIG.format(
                port=port,
                host_key=host_key,
                pid_file=base / "sshd.pid",
                authorized_keys=authorized,
            )
            + extra_config
        )
        with log_file.open("ab") as log:
            proc = subprocess.Popen(
                [binary, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            ready = _wait_for_banner(proc, port, log_file)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if ready:
            known = base / "known_hosts"
            server = Sshd(
                port, base, host_key, host_public, authorized, client_key, known, log_file, proc
            )
            known.write_text(server.known_hosts_line() + "\n")
            return server
    raise RuntimeError(f"sshd would not start: {log_file.read_text(errors='replace')}")


@contextlib.contextmanager
def running_sshd(
    base: Path, *, host_key_kind: str = "ed25519", extra_config: str = ""
) -> Iterator[Sshd]:
    """Context manager: a started sshd, stopped on exit."""
    server = start_sshd(base, host_key_kind=host_key_kind, extra_config=extra_config)
    try:
        yield server
    finally:
        server.stop()
