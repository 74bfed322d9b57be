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
def _load_schema() -> Any:
    path = SHARED_DIR / "pve" / "apidoc.json"
    try:
        from provision.sim.apischema import ApiSchema
    except ImportError:
        return None
    if not path.is_file():
        return None
    return ApiSchema.load(path)


_SCHEMA: list[Any] = []


def schema() -> Any:
    """The API schema validator (provision.sim.apischema), or None while it does not exist."""
    if not _SCHEMA:
        _SCHEMA.append(_load_schema())
    return _SCHEMA[0]


def request_params(request: Any) -> dict[str, Any]:
    """The parameters of a recorded request (query for GET/DELETE, form body otherwise)."""
    params: dict[str, Any] = {}
    pairs = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
    body = request.body
    if body and request.method not in ("GET", "DELETE"):
        text = body.decode() if isinstance(body, bytes) else str(body)
        if "multipart/form-data" not in request.headers.get("Content-Type", ""):
            pairs += parse_qsl(text, keep_blank_values=True)
    for key, value in pairs:
        if key in params:
            previous = params[key]
            params[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[key] = value
    return params


def schema_violations(calls: Any) -> list[str]:
    """Schema problems of every request in a responses call list ([] without a schema)."""
    validator = schema()
    if validator is None:
        return []
    problems: list[str] = []
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
