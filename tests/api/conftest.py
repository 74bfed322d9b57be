"""Fixtures for the Proxmox client layer: clients on mocked HTTP, a real local HTTPS server,
and a check of every request shape against Proxmox's own API schema."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pve_testing import make_client


@pytest.fixture
def client() -> Any:
    """A token-authenticated client on the mocked URL."""
    return make_client()


# ---- a real HTTPS server on 127.0.0.1 ----------------------------------------------------
@dataclass
class Certs:
    """A CA, a server certificate it signed (for 127.0.0.1) and a self-signed one."""

    ca_pem: Path
    signed_cert: Path
    signed_key: Path
    self_cert: Path
    self_key: Path


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, cert: Any, key: Any | None = None) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _cert(subject_cn: str, key: Any, issuer: Any, issuer_key: Any, *, ca: bool) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Certificates made once per test session."""
    from cryptography import x509

    folder = tmp_path_factory.mktemp("certs")
    ca_key = _key()
    ca = _cert("aihost test CA", ca_key, None, None, ca=True)
    _write(folder / "ca.pem", ca)
    server_key = _key()
    signed = _cert("127.0.0.1", server_key, ca.subject, ca_key, ca=False)
    _write(folder / "signed.pem", signed, server_key)
    self_key = _key()
    self_signed = _cert("pve1.self", self_key, None, None, ca=False)
    _write(folder / "self.pem", self_signed, self_key)
    assert isinstance(self_signed, x509.Certificate)
    return Certs(
        folder / "ca.pem",
        folder / "signed.pem",
        folder / "signed.key",
        folder / "self.pem",
        folder / "self.key",
    )


class _Handler(BaseHTTPRequestHandler):
    """Answers every API GET with {"data": {"path": ..., "auth": <header present>}}."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        payload = {"data": {"path": self.path, "auth": bool(self.headers.get("Authorization"))}}
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        """/access/ticket logs anyone in; other POSTs echo whether the CSRF header came."""
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.endswith("/access/ticket"):
            data: Any = {"ticket": "PVE:root@pam:TICKET", "CSRFPreventionToken": "CSRF"}
        else:
            data = {
                "csrf": self.headers.get("CSRFPreventionToken"),
                "cookie": self.headers.get("Cookie"),
            }
        body = json.dumps({"data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@dataclass
class HttpsServer:
    """A running local HTTPS server and what it saw."""

    url: str
    cert: Path
    seen: list[str]


def _serve(cert: Path, key: Path) -> Iterator[HttpsServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []  # type: ignore[attr-defined]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        yield HttpsServer(f"https://127.0.0.1:{port}", cert, httpd.seen)  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def self_signed_server(certs: Certs) -> Iterator[HttpsServer]:
    """HTTPS on 127.0.0.1 with a self-signed certificate (like a fresh Proxmox)."""
    yield from _serve(certs.self_cert, certs.self_key)


@pytest.fixture
def ca_signed_server(certs: Certs) -> Iterator[HttpsServer]:
    """HTTPS on 127.0.0.1 with a certificate signed by the test CA."""
    yield from _serve(certs.signed_cert, certs.signed_key)
