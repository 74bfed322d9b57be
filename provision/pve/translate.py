"""Turn Proxmox HTTP failures into aihost's errors, with what to do about them.

Proxmox answers errors with the message as the HTTP reason phrase and as `message` in
the JSON body; parameter errors (400) carry {"errors": {"param": "text"}}.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from provision.errors import ApiError, AuthError, PermissionDenied

PERMISSION_RE = re.compile(r"Permission check failed \((/[^,)]*), ([^)]+)\)")
# Transient failures worth repeating for an idempotent GET (USERS.md: "got no worker upid").
TRANSIENT_RE = re.compile(
    r"got no worker upid|got timeout|temporarily unavailable|Connection refused|"
    r"connection timed out|No route to host|can't lock file",
    re.IGNORECASE,
)


# 401 texts that say nothing beyond the status: create_ticket's, pveproxy auth_handler's
_PLAIN_401 = ("", "authentication failure", "authentication failed!", "no ticket")


@dataclass(frozen=True)
class Caller:
    """Who made a request, for messages: the inventory host and the authenticated id."""

    host_name: str
    auth_id: str
    is_token: bool
    secret_source: str  # "variable PVE_TOKEN" / "file /etc/x" (never the secret itself)


def proxmox_message(reason: str, body: bytes | str) -> tuple[str, dict[str, str]]:
    """Proxmox's message and per-parameter errors from a failed response."""
    message = ""
    errors: dict[str, str] = {}
    try:
        parsed = json.loads(body)
    except (ValueError, TypeError):
        parsed = None
    if isinstance(parsed, dict):
        if isinstance(parsed.get("message"), str):
            message = parsed["message"]
        if isinstance(parsed.get("errors"), dict):
            errors = {str(k): str(v).strip() for k, v in parsed["errors"].items()}
    if not message:
        message = reason or ""
    return message.strip(), errors


def is_transient(status: int, message: str) -> bool:
    """A failure that may succeed when repeated (only ever used for GETs)."""
    return status in (502, 503, 595, 596) or (status == 500 and bool(TRANSIENT_RE.search(message)))


def grant_command(caller: Caller, path: str, privilege: str) -> str:
    """The pveum commands that give caller privilege on path (via a role aihost names)."""
    who = f"--tokens '{caller.auth_id}'" if caller.is_token else f"--users '{caller.auth_id}'"
    role = "AihostExtra"
    privs = privilege.replace("|", ",")
    return (
        f"pveum role add {role} --privs {privs} (or, if the role exists: pveum role modify "
        f"{role} --append 1 --privs {privs}); then pveum acl modify {path} {who} --roles {role}"
    )


def http_error(
    caller: Caller, method: str, path: str, status: int, reason: str, body: bytes | str
) -> ApiError:
    """The aihost error for a non-2xx Proxmox answer to METHOD path."""
    message, errors = proxmox_message(reason, body)
    what = f"{method} {path}"
    host = caller.host_name
    if status == 401:
        return _auth_failure(caller, message)
    if status == 403:
        return _permission_denied(caller, what, message)
    if status == 400:
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        text = f"Proxmox on host {host} refused {what}: {message or 'bad request'}"
        return ApiError(f"{text} ({detail})" if detail else text, status=400, errors=errors)
    if status in (595, 596):
        return ApiError(
            f"Proxmox on host {host} could not reach the node for {what}: {message}",
            status=status,
            hint="the entry node cannot talk to the target node: check the cluster "
            "(pvecm status) and that the node is up",
        )
    return ApiError(
        f"{what} on host {host} failed: {message or f'HTTP {status}'}",
        status=status,
    )


def _auth_failure(caller: Caller, message: str) -> AuthError:
    """A 401: which credential of which host was refused, and how to check it."""
    credential = (
        f"API token {caller.auth_id}" if caller.is_token else f"password of {caller.auth_id}"
    )
    hint = (
        f"check the token id and its secret ({caller.secret_source}); a token is shown once "
        "at creation: pveum user token add USER@REALM NAME"
        if caller.is_token
        else f"check the user name and the password ({caller.secret_source})"
    )
    said = "" if message.lower() in _PLAIN_401 else f" ({message})"
    return AuthError(
        f"authentication failure: the {credential} for host {caller.host_name} was refused{said}",
        status=401,
        hint=hint,
    )


def _permission_denied(caller: Caller, what: str, message: str) -> PermissionDenied:
    """A 403: the missing privilege on its ACL path, with the grant that fixes it."""
    host = caller.host_name
    match = PERMISSION_RE.search(message)
    if match:
        acl_path, privilege = match.group(1), match.group(2).strip()
        return PermissionDenied(
            f"{caller.auth_id} on host {host} is missing privilege {privilege} on "
            f"{acl_path} ({what})",
            status=403,
            hint=grant_command(caller, acl_path, privilege)
            + (
                "; a token with privilege separation also needs it granted to its user"
                if caller.is_token
                else ""
            ),
        )
    return PermissionDenied(
        f"{caller.auth_id} on host {host} may not {what}: {message or 'HTTP 403'}",
        status=403,
    )
