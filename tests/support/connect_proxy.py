"""A real HTTP CONNECT proxy and a TLS impostor on 127.0.0.1, for the certificate pin tests.

`connect_proxy(redirect=None)` answers `CONNECT host:port` with 200 and pipes bytes both
ways, to the requested target or, with `redirect=(host, port)`, to another server (a
hostile proxy or a DNS spoof). It logs every CONNECT target.

`tls_impostor(state_dir)` is a TLS server with its own self-signed certificate that keeps
every byte a client sends it after the handshake (where a leaked token header or password
would show up) and answers any request with 401.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

IO_TIMEOUT = 5.0


@dataclass
class Proxy:
    """A running CONNECT proxy: its URL for HTTPS_PROXY, and the targets it was asked for."""

    url: str
    targets: list[str] = field(default_factory=list)


@dataclass
class Impostor:
    """A running TLS server with another certificate, and everything it received."""

    host: str
    port: int
    received: list[bytes] = field(default_factory=list)

    def text(self) -> str:
        """All received bytes, decoded loosely."""
        return b"".join(self.received).decode("latin-1")


def _pipe(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    while True:
        ready, _, _ = select.select(sockets, [], [], IO_TIMEOUT)
        if not ready:
            return
        for sock in ready:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


def _read_head(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def _serve_proxy(client: socket.socket, proxy: Proxy, redirect: tuple[str, int] | None) -> None:
    with contextlib.closing(client):
        client.settimeout(IO_TIMEOUT)
        head = _read_head(client)
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or parts[0] != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        proxy.targets.append(parts[1])
        host, _, port = parts[1].rpartition(":")
        target = redirect or (host.strip("[]"), int(port))
        try:
            upstream = socket.create_connection(target, timeout=IO_TIMEOUT)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with contextlib.closing(upstream):
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with contextlib.suppress(OSError):
                _pipe(client, upstream)


def _accept_loop(listener: socket.socket, handle: object, stop: threading.Event) -> None:
    listener.settimeout(0.05)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(target=handle, args=(conn,), daemon=True).start()  # type: ignore[arg-type]


@contextlib.contextmanager
def _listening(handle: object) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    thread = threading.Thread(target=_accept_loop, args=(listener, handle, stop), daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@contextlib.contextmanager
def connect_proxy(redirect: tuple[str, int] | None = None) -> Iterator[Proxy]:
    """A CONNECT proxy on 127.0.0.1 (optionally sending every tunnel to `redirect`)."""
    proxy = Proxy(url="")
    with _listening(lambda conn: _serve_proxy(conn, proxy, redirect)) as port:
        proxy.url = f"http://127.0.0.1:{port}"
        yield proxy


def _serve_tls(conn: socket.socket, context: ssl.SSLContext, impostor: Impostor) -> None:
    with contextlib.closing(conn):
        conn.settimeout(IO_TIMEOUT)
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            return  # the client refused the certificate during the handshake
        with contextlib.closing(tls), contextlib.suppress(OSError, ssl.SSLError):
            head = _read_head(tls)
            impostor.received.append(head)
            if head:
                body = tls.recv(65536) if b"Content-Length" in head else b""
                impostor.received.append(body)
                tls.sendall(b"HTTP/1.1 401 no\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@contextlib.contextmanager
def tls_impostor(state_dir: Path) -> Iterator[Impostor]:
    """A TLS server on 127.0.0.1 with a fresh self-signed certificate made in state_dir."""
    from provision.sim.certs import ensure_certificate

    cert, key = ensure_certificate(state_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    impostor = Impostor("127.0.0.1", 0)
    with _listening(lambda conn: _serve_tls(conn, context, impostor)) as port:
        impostor.port = port
        yield impostor
