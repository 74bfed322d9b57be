"""The simulator's SSH endpoint: SFTP into the node's storage directories, plus a few
read-only host facts and `pvesm path` over exec (paramiko's server side, bound to
127.0.0.1 only).

Node paths are mapped by prefix (e.g. "/var/lib/vz" -> state_dir/storage/local); anything
outside the mapped prefixes is refused with "permission denied", as is public-key auth
with a key not in authorized_keys (password auth is not offered).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shlex
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)

from provision.sim.pvesm import run_pvesm
from provision.sim.sftp_files import MappedSftp
from provision.sim.wakeup import Wakeup

EXEC_CLOSE_GRACE = 0.5  # seconds an answered exec channel waits for the client's close


def _write_new(path: Path, data: bytes) -> None:
    """Create path with mode 0600 unless it exists (another process may win the race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _ensure_ed25519(path: Path) -> paramiko.Ed25519Key:
    """Load the Ed25519 private key at path, generating and saving it first if missing."""
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        _write_new(path, pem)
    return paramiko.Ed25519Key.from_private_key_file(str(path))


def public_key_line(key: paramiko.PKey, comment: str | None = None) -> str:
    """ "ssh-ed25519 AAAA..." (OpenSSH public key format), with an optional comment."""
    line = f"{key.get_name()} {key.get_base64()}"
    return f"{line} {comment}" if comment else line


def generate_client_key(path: Path) -> str:
    """Create an Ed25519 client key at path (0600) and path.pub unless it exists; return
    its public key line for authorized_keys."""
    key = _ensure_ed25519(path)
    line = public_key_line(key, "aihost-sim")
    pub = path.with_name(path.name + ".pub")
    if not pub.exists():
        _write_new(pub, (line + "\n").encode())
    return line


def _parse_authorized(lines: list[str]) -> set[tuple[str, bytes]]:
    keys: set[tuple[str, bytes]] = set()
    for line in lines:
        tokens = line.strip().split()
        for i, token in enumerate(tokens[:-1]):
            if token.startswith(("ssh-", "ecdsa-", "sk-")):
                with contextlib.suppress(ValueError):
                    keys.add((token, base64.b64decode(tokens[i + 1], validate=True)))
                break
    return keys


class _Server(paramiko.ServerInterface):
    def __init__(self, endpoint: SshEndpoint) -> None:
        self.endpoint = endpoint

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if (key.get_name(), key.asbytes()) in self.endpoint.authorized:
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        text = command.decode("utf-8", "replace")
        self.endpoint._spawn(channel, text)
        return True


class SshEndpoint:
    """An SSH/SFTP server on 127.0.0.1 standing in for a Proxmox node's sshd."""

    def __init__(
        self,
        *,
        host_key_path: Path,
        authorized_keys: list[str],
        path_map: dict[str, Path],
        port: int = 0,
        host_facts: dict[str, str] | None = None,
        storages: Callable[[], dict[str, dict[str, Any]]] | None = None,
    ) -> None:
        self.host_key = _ensure_ed25519(host_key_path)
        self.authorized = _parse_authorized(authorized_keys)
        self.path_map = {k.rstrip("/") or "/": Path(v) for k, v in path_map.items()}
        self.host_facts = {" ".join(k.split()): v for k, v in (host_facts or {}).items()}
        self.storages = storages or dict  # the node's storage.cfg, read at each pvesm call
        self.port = port
        self._sock: socket.socket | None = None
        self._wakeup: Wakeup | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._transports: list[paramiko.Transport] = []
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def host_key_line(self) -> str:
        """The host's public key, "ssh-ed25519 AAAA..."."""
        return public_key_line(self.host_key)

    def known_hosts_line(self, host: str = "127.0.0.1") -> str:
        """A known_hosts line for this endpoint, "[127.0.0.1]:PORT ssh-ed25519 AAAA..."."""
        return f"[{host}]:{self.port} {self.host_key_line}"

    def start(self) -> SshEndpoint:
        """Listen on 127.0.0.1 and serve connections in background threads."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(16)
        sock.setblocking(False)  # accept only once the selector says a connection waits
        self._sock, self._wakeup = sock, Wakeup(sock)
        self.port = sock.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._accept_loop, daemon=True, name=f"sim-ssh-{self.port}"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the threads to end."""
        self._stop.set()
        if self._thread is not None and self._sock is not None and self._wakeup is not None:
            self._wakeup.wake()
            self._thread.join(timeout=5)
            self._sock.close()
            self._wakeup.close()
            self._thread = self._sock = self._wakeup = None
        with self._lock:
            transports, self._transports = self._transports, []
            workers, self._workers = self._workers, []
        for transport in transports:
            transport.close()
        for thread in [*transports, *workers]:
            thread.join(timeout=5)

    def __enter__(self) -> SshEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._sock is not None and self._wakeup is not None
        while self._wakeup.wait():
            try:
                conn, _addr = self._sock.accept()
            except BlockingIOError:  # taken back by the client meanwhile
                continue
            except OSError:
                return
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        # OpenSSH's sshd answers an exec request (serverloop.c server_input_channel_req ->
        # session_input_channel_req) before the command writes anything; here a worker
        # thread may write the command's output first, and with Nagle's algorithm the
        # reply then waits for the client's delayed ACK (~40 ms per exec, an artefact of
        # this server that no node has): small packets go out at once
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(conn)
        transport.name = f"sim-ssh-conn-{self.port}"
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler(
            "sftp", paramiko.SFTPServer, MappedSftp, path_map=self.path_map
        )
        with self._lock:
            self._transports = [t for t in self._transports if t.is_active()]
            self._transports.append(transport)
        try:
            transport.start_server(event=threading.Event(), server=_Server(self))
        except (paramiko.SSHException, OSError, EOFError):
            transport.close()

    def _spawn(self, channel: paramiko.Channel, command: str) -> None:
        worker = threading.Thread(
            target=self._exec,
            args=(channel, command),
            daemon=True,
            name=f"sim-ssh-exec-{self.port}",
        )
        with self._lock:
            self._workers = [w for w in self._workers if w.is_alive()]
            self._workers.append(worker)
        worker.start()

    def _exec(self, channel: paramiko.Channel, command: str) -> None:
        """Answer one exec request. Data, exit status and EOF may precede paramiko's reply
        to the request, but a close may not: close once the client has closed its side
        (paramiko's and OpenSSH's clients do after EOF) or after a short grace period."""
        try:
            code, out, err = self.run_fact(command)
            if out:
                channel.sendall(out.encode())
            if err:
                channel.sendall_stderr(err.encode())
            channel.send_exit_status(code)
            channel.shutdown_write()
            deadline = time.monotonic() + EXEC_CLOSE_GRACE
            while not (channel.closed or channel.eof_received or self._stop.is_set()):
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
        except (OSError, EOFError, paramiko.SSHException):
            pass
        finally:
            channel.close()

    def run_fact(self, command: str) -> tuple[int, str, str]:
        """Answer an exec request: (exit status, stdout, stderr)."""
        key = " ".join(command.split())
        if key in self.host_facts:
            return 0, self.host_facts[key], ""
        try:
            argv = shlex.split(command)
        except ValueError:
            return 2, "", "bash: syntax error: unexpected end of file\n"
        if not argv:
            return 0, "", ""
        program, args = argv[0], argv[1:]
        if program == "true":
            return 0, "", ""
        if program == "readlink":
            return 1, "", ""  # no such link among the host facts: readlink prints nothing
        if program in ("cat", "sha256sum") and args:
            return self._read_files(program, args)
        if program in ("pvesm", "/usr/sbin/pvesm"):
            return run_pvesm(self.storages(), args)
        return 127, "", f"bash: {program}: command not found\n"

    def _read_files(self, program: str, paths: list[str]) -> tuple[int, str, str]:
        out, err = [], []
        for node_path in paths:
            local = MappedSftp.map_path(self.path_map, node_path)
            if local is None or not local.is_file():
                err.append(f"{program}: {node_path}: No such file or directory\n")
                continue
            data = local.read_bytes()
            if program == "cat":
                out.append(data.decode("utf-8", "replace"))
            else:
                out.append(f"{hashlib.sha256(data).hexdigest()}  {node_path}\n")
        return (1 if err else 0), "".join(out), "".join(err)
