"""HTTP plumbing of the simulator: parsing requests the way pveproxy does, and answering
in Proxmox's shapes (`{"data": ...}`, the message as reason phrase and in the body)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.client import responses
from typing import Any
from urllib.parse import unquote, urlsplit

PARAM_FAIL = "Parameter verification failed."


class ApiFailure(Exception):
    """An answer other than success: HTTP status, message and per-parameter errors."""

    def __init__(
        self, status: int, message: str, errors: dict[str, str] | None = None, delay: float = 0.0
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.delay = delay  # seconds the handler spent before it died (answered that late)


def fail(message: str, status: int = 500, delay: float = 0.0) -> ApiFailure:
    """A raw error as Proxmox reports a die() in an API handler (HTTP 500), delay seconds
    after the request (a timeout the handler waited out)."""
    return ApiFailure(status, message, delay=delay)


def param_fail(errors: dict[str, str]) -> ApiFailure:
    """HTTP 400 "Parameter verification failed." with per-parameter messages."""
    return ApiFailure(400, PARAM_FAIL, errors)


@dataclass
class Request:
    """One parsed API request."""

    method: str
    path: str  # path below /api2/json, e.g. /nodes/pve1/qemu
    params: dict[str, Any]
    headers: dict[str, str]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


def _add(params: dict[str, Any], key: str, value: Any) -> None:
    if key in params:
        old = params[key]
        params[key] = (old if isinstance(old, list) else [old]) + [value]
    else:
        params[key] = value


def parse_request(
    method: str, target: str, headers: dict[str, str], body: bytes
) -> tuple[str, dict[str, Any], dict[str, tuple[str, bytes]]]:
    """(decoded path, parameters, uploaded files) of a request.

    Query parameters, urlencoded and JSON bodies, and multipart/form-data (uploads) are
    all merged into one parameter dict; repeated names become lists.
    """
    split = urlsplit(target)
    path = "/" + "/".join(unquote(s) for s in split.path.split("/") if s)
    params: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    ctype = headers.get("content-type", "")
    if body and ctype.startswith("application/json"):
        loaded = json.loads(body.decode("utf-8") or "{}")
        for key, value in loaded.items():
            params[key] = value
    elif body and ctype.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body
        )
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            raw = part.get_payload(decode=True)
            payload = raw if isinstance(raw, bytes) else b""
            if filename is not None:
                files[str(name)] = (filename, payload)
            elif name:
                _add(params, str(name), payload.decode("utf-8"))
    elif body:
        params = decode_urlencoded(body.decode("latin-1"))
    params.update(decode_urlencoded(split.query))  # the query string wins, as in extract_params
    return path, {k: v for k, v in params.items() if v is not None}, files


def decode_urlencoded(data: str) -> dict[str, Any]:
    """pve-http-server APIServer/AnyEvent.pm decode_urlencoded: pairs split on `&` or
    `;`, `k=v` split on `=` (Perl's split: `a=b=c` gives b, `a=` gives no value), `+`
    and %XX decoded, values read as UTF-8, repeated names as lists. A name without a
    value is None (Perl's undef: an optional parameter left out, a required one missing).
    """
    res: dict[str, Any] = {}
    for pair in re.split(r"[&;]", data) if data else []:
        fields = pair.split("=")
        while fields and fields[-1] == "":
            fields.pop()
        if not fields:
            continue
        key = _unescape(fields[0]).decode("latin-1")
        if len(fields) < 2:
            res[key] = None
            continue
        value = _unescape(fields[1]).decode("utf-8", "replace")
        old = res.get(key)
        res[key] = value if old is None else (old if isinstance(old, list) else [old]) + [value]
    return res


def _unescape(text: str) -> bytes:
    raw = text.replace("+", " ").encode("latin-1", "replace")
    return re.sub(rb"%([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def reason_phrase(message: str) -> str:
    """A message usable as HTTP reason phrase (one line, latin-1)."""
    line = " ".join(message.strip().splitlines()) or "error"
    return line.encode("latin-1", "replace").decode("latin-1")


def render(
    status: int,
    payload: dict[str, Any] | None,
    reason: str | None = None,
    extra_headers: dict[str, str] | None = None,
    keep_alive: bool = True,
) -> bytes:
    """A complete HTTP/1.1 response (status line, headers and body in one buffer)."""
    body = b"" if payload is None else json.dumps(payload).encode("utf-8")
    head = [
        f"HTTP/1.1 {status} {reason_phrase(reason or responses.get(status, 'OK'))}",
        "Server: pve-api-daemon/3.0",
        "Content-Type: application/json;charset=UTF-8",
        f"Content-Length: {len(body)}",
        "Cache-Control: max-age=0",
        "Pragma: no-cache",
        f"Connection: {'Keep-Alive' if keep_alive else 'close'}",
    ]
    head += [f"{k}: {v}" for k, v in (extra_headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def failure_payload(failure: ApiFailure) -> dict[str, Any]:
    """The JSON body of a failed request."""
    payload: dict[str, Any] = {"data": None, "message": failure.message.rstrip("\n") + "\n"}
    if failure.errors is not None:
        payload["errors"] = failure.errors
    return payload
