"""Helpers for the Proxmox client layer tests: clients on mocked HTTP and a check of every
request shape against Proxmox's own API schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aihost_testing import SHARED_DIR

URL = "https://pve.test:8006"
API = URL + "/api2/json"
TOKEN_ID = "aihost@pve!prov"
TOKEN_SECRET = "11111111-2222-3333-4444-555555555555"


def make_client(**kwargs: Any) -> Any:
    """A PveClient for URL with a plain session and a no-op sleep (token auth by default)."""
    import requests

    from provision.pve.client import PveClient

    options: dict[str, Any] = {
        "url": URL,
        "host_name": "pve1",
        "node": "pve1",
        "session": requests.Session(),
        "sleep": lambda _s: None,
        "secret_source": "environment variable PVE_TOKEN",
    }
    options.update(kwargs)
    if "token" not in options and "password" not in options:
        options["token"] = (TOKEN_ID, TOKEN_SECRET)
    return PveClient(**options)


# ---- schema validation of request shapes ------------------------------------------------
def _load_schemas() -> list[Any]:
    try:
        from provision.sim.apischema import load_schemas_for_tests
    except ImportError:
        return []
    return list(load_schemas_for_tests(SHARED_DIR))


_SCHEMAS: list[list[Any]] = []


def schemas() -> list[Any]:
    """Validators for PVE 9.1 and 8.4 (provision.sim.apischema); [] while it does not exist."""
    if not _SCHEMAS:
        _SCHEMAS.append(_load_schemas())
    return _SCHEMAS[0]


def request_params(request: Any) -> dict[str, Any]:
    """The parameters of a recorded request (query for GET/DELETE, form body otherwise)."""
    params: dict[str, Any] = {}
    pairs = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
    body = request.body
    if body and request.method not in ("GET", "DELETE"):
        text = body.decode() if isinstance(body, bytes) else str(body)
        content_type = request.headers.get("Content-Type", "")
        if "multipart/form-data" in content_type:
            pairs += _multipart_fields(content_type, body)
        else:
            pairs += parse_qsl(text, keep_blank_values=True)
    for key, value in pairs:
        if key in params:
            previous = params[key]
            params[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[key] = value
    return params


def _multipart_fields(content_type: str, body: Any) -> list[tuple[str, str]]:
    """(name, value) of each multipart part; a file part's value is its file name."""
    from email.parser import BytesParser

    raw = body if isinstance(body, bytes) else str(body).encode()
    message = BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    fields: list[tuple[str, str]] = []
    for part in message.get_payload():  # type: ignore[union-attr]
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True) or b""
        fields.append((str(name), filename if filename else payload.decode(errors="replace")))
    return fields


def schema_violations(calls: Any) -> list[str]:
    """Schema problems (PVE 9.1 and 8.4) of every request in a responses call list."""
    problems: list[str] = []
    for validator in schemas():
        for call in calls:
            request = call.request
            path = urlsplit(request.url).path.removeprefix("/api2/json")
            for problem in validator.validate(request.method, path, request_params(request)):
                problems.append(f"{request.method} {path}: {problem}")
    return problems


def pem_fingerprint(path: Path) -> str:
    """The SHA-256 fingerprint of a PEM certificate, AB:CD form."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
