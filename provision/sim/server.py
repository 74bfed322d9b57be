"""SimServer: the simulated Proxmox VE API over real HTTPS on 127.0.0.1 (plus the SFTP
endpoint of provision.sim.sftp), serving the world kept in a state dir.

Responses are written in one `send` with TCP_NODELAY set, so clients are not slowed by
Nagle's algorithm meeting delayed ACKs.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from provision.sim.app import Reply, SimApp, Validator
from provision.sim.certs import ensure_certificate, fingerprint, server_context
from provision.sim.control import handle_control
from provision.sim.fixture import storage_root
from provision.sim.http import render
from provision.sim.wakeup import Wakeup

ADMIN_TOKEN = "root@pam!aihost"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        return

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        app = self.server.app
        if self.path.startswith("/_sim/"):
            if not ipaddress.ip_address(self.client_address[0]).is_loopback:
                status, payload = 403, {"error": "control API is for loopback clients only"}
            else:
                status, payload = handle_control(app, self.command, self.path, headers, body)
            self.wfile.write(render(status, payload))
            return
        reply: Reply = app.handle(self.command, self.path, headers, body)
        if reply.action in ("drop", "hang"):
            time.sleep(reply.delay)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.delay:  # a timeout the handler waited out, pveproxy's 401 delay
            self.server.wait(reply.delay)
        # pve-http-server AnyEvent.pm response: every answer >= 400 closes the connection
        keep = headers.get("connection", "").lower() != "close" and reply.status < 400
        self.close_connection = not keep
        self.wfile.write(render(reply.status, reply.payload, reply.reason, reply.headers, keep))

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, port: int, app: SimApp, context: ssl.SSLContext, wait: Callable[[float], None]
    ) -> None:
        self.app = app
        self.context = context
        self.wait = wait
        super().__init__(("127.0.0.1", port), _Handler)
        self._wakeup = Wakeup(self.socket)
        self._served = threading.Event()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """socketserver's loop (one request per ready accept), ended by shutdown() at
        once: it waits on the socket and a wakeup pair, with no poll interval."""
        try:
            while self._wakeup.wait():
                self._handle_request_noblock()  # type: ignore[attr-defined]  # not in typeshed
                self.service_actions()
        finally:
            self._served.set()

    def shutdown(self) -> None:
        """Stop serve_forever and wait for it to end (call it from another thread)."""
        self._wakeup.wake()
        self._served.wait()

    def server_close(self) -> None:
        """Close the listening socket and the wakeup pair."""
        super().server_close()
        self._wakeup.close()

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, addr = self.socket.accept()
        # The TLS handshake happens in the request's own thread (first read), so a slow
        # client never blocks the accept loop.
        return self.context.wrap_socket(raw, server_side=True, do_handshake_on_connect=True), addr  # noqa: E501

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients that hang up or fail the TLS handshake are not server errors


class SimServer:
    """A simulated Proxmox VE node/cluster over HTTPS (and SFTP) for one state dir."""

    def __init__(
        self,
        state_dir: Path,
        fixture: Path | None = None,
        *,
        port: int = 0,
        sftp_port: int | None = 0,
        durations: dict[str, float] | None = None,
        validator: Validator | None = None,
        clock: Callable[[], float] = time.time,
        auth_delay: float = 3.0,
        wait: Callable[[float], None] = time.sleep,
    ) -> None:
        """wait: how a delayed answer (401, an agent that does not answer) passes its
        delay; a test with a hand-moved clock passes the clock's advance."""
        self.state_dir = Path(state_dir)
        self._wait = wait
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.app = SimApp(
            self.state_dir,
            fixture,
            durations=durations,
            validator=validator,
            clock=clock,
            auth_delay=auth_delay,
        )
        self.cert_path, self._key_path = ensure_certificate(self.state_dir)
        self.fingerprint = fingerprint(self.cert_path)
        self.token_id = ADMIN_TOKEN
        self.token_secret = self.app.secrets[ADMIN_TOKEN]
        self.root_password = self.app.secrets["root@pam"]
        self.client_key_path = self.state_dir / "ssh" / "client_ed25519"
        self._port, self._sftp_wanted = port, sftp_port
        self.sftp_port: int | None = None
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._ssh: Any = None

    @property
    def port(self) -> int:
        """The HTTPS port (after start)."""
        return self._http.server_address[1] if self._http else self._port

    @property
    def url(self) -> str:
        """ "https://127.0.0.1:PORT" (without /api2/json)."""
        return f"https://127.0.0.1:{self.port}"

    def secret_for(self, token_id: str) -> str:
        """The secret of any fixture token (e.g. "aihost@pve!nopower") or user password."""
        return self.app.secrets[token_id]

    def start(self) -> SimServer:
        """Serve in background threads; returns self."""
        self._http = _HttpServer(
            self._port, self.app, server_context(self.cert_path, self._key_path), self._wait
        )
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            daemon=True,
            name=f"sim-https-{self.port}",
        )
        self._thread.start()
        if self._sftp_wanted is not None:
            self._start_ssh(self._sftp_wanted)
        return self

    def _start_ssh(self, port: int) -> None:
        from provision.sim.sftp import SshEndpoint, generate_client_key

        (self.state_dir / "ssh").mkdir(exist_ok=True)
        public = generate_client_key(self.client_key_path)
        with self.app.store.locked():
            world = self.app.store.load()
        path_map = {
            spec["path"]: storage_root(self.state_dir, sid)
            for sid, spec in world["storages"].items()
            if spec.get("path")
        }
        first = world["nodes"][sorted(world["nodes"])[0]]
        facts = {
            "cat /proc/cmdline": first.get("cmdline", "") + "\n",
            "lsmod": "Module                  Size  Used by\nvfio_pci               16384  0\n",
        }
        for dev in first["pci"]:
            driver = dev.get(
                "driver",
                "vfio-pci"
                if dev["class"].startswith(("0x03", "0x0403")) and dev["vendor"] == "0x10de"
                else None,
            )  # noqa: E501
            if driver:
                facts[f"readlink /sys/bus/pci/devices/{dev['id']}/driver"] = (
                    f"../../../../bus/pci/drivers/{driver}\n"  # noqa: E501
                )
        self._ssh = SshEndpoint(
            host_key_path=self.state_dir / "ssh" / "host_ed25519",
            authorized_keys=[public],
            path_map=path_map,
            port=port,
            host_facts=facts,
            storages=self._storages,
        ).start()
        self.sftp_port = self._ssh.port

    def _storages(self) -> dict[str, Any]:
        """The world's storages now (what `pvesm` on the node reads from storage.cfg)."""
        with self.app.store.locked():
            return dict(self.app.store.load()["storages"])

    def known_hosts_line(self, host: str = "127.0.0.1") -> str:
        """ "[127.0.0.1]:PORT ssh-ed25519 AAAA..." for the SFTP endpoint."""
        if self._ssh is None:
            raise RuntimeError("the simulator runs without its SSH endpoint")
        line: str = self._ssh.known_hosts_line(host)
        return line

    def stop(self) -> None:
        """Stop serving (HTTPS and SFTP)."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._ssh is not None:
            self._ssh.stop()
            self._ssh = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def request_log(self, since: int = 0) -> list[dict[str, Any]]:
        """Requests served by this server (same as GET /_sim/requests)."""
        return self.app.request_log(since)

    def violations(self) -> list[str]:
        """Schema violations seen plus GPU-invariant violations recorded in the world."""
        return self.app.violations()

    def reset(self) -> None:
        """Back to the fixture's world (same as POST /_sim/reset)."""
        self.app.reset()
