"""Authentication (API tokens, tickets with CSRF tokens) and privileges of the simulator.

Users, tokens and their ACLs come from the fixture's `access:` section; secrets (token
uuids, passwords, the ticket key) are generated per state dir (StateStore.secrets).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision.sim.http import ApiFailure

ALL_PRIVS = [
    "Datastore.Allocate",
    "Datastore.AllocateSpace",
    "Datastore.AllocateTemplate",
    "Datastore.Audit",
    "Group.Allocate",
    "Mapping.Audit",
    "Mapping.Modify",
    "Mapping.Use",
    "Permissions.Modify",
    "Pool.Allocate",
    "Pool.Audit",
    "Realm.Allocate",
    "Realm.AllocateUser",
    "SDN.Allocate",
    "SDN.Audit",
    "SDN.Use",
    "Sys.AccessNetwork",
    "Sys.Audit",
    "Sys.Console",
    "Sys.Incoming",
    "Sys.Modify",
    "Sys.PowerMgmt",
    "Sys.Syslog",
    "User.Modify",
    "VM.Allocate",
    "VM.Audit",
    "VM.Backup",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Console",
    "VM.GuestAgent.Audit",
    "VM.GuestAgent.FileRead",
    "VM.GuestAgent.FileSystemMgmt",
    "VM.GuestAgent.FileWrite",
    "VM.GuestAgent.Unrestricted",
    "VM.Migrate",
    "VM.PowerMgmt",
    "VM.Replicate",
    "VM.Snapshot",
    "VM.Snapshot.Rollback",
]
TICKET_LIFETIME = 7200.0
AUTH_GRACE = 300.0  # pve-access-control AccessControl.pm $auth_graceperiod
UPLOAD_RE = re.compile(r"^/nodes/[^/]+/storage/([^/]+)/upload$")


class AuthFailure(ApiFailure):
    """A 401 raised by pveproxy's auth handler (pve-manager PVE/HTTPServer.pm
    auth_handler): a plain die, so pve-http-server AnyEvent.pm answers it with the text as
    reason phrase and no body (there is no login formatter for json)."""


def resolve_privs(spec: Any) -> set[str]:
    """A fixture privilege spec ("all", a list, or {all_but: [...]}) as a set."""
    if spec == "all":
        return set(ALL_PRIVS)
    if isinstance(spec, dict):
        return set(ALL_PRIVS) - set(spec.get("all_but") or [])
    return set(spec or [])


def acl_privs(acl: list[dict[str, Any]], path: str) -> set[str]:
    """Privileges an ACL grants on path: the deepest entry on the way down wins."""
    parts = [p for p in path.split("/") if p]
    prefixes = ["/"] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
    granted: set[str] = set()
    for prefix in prefixes:
        for entry in acl:
            if (entry.get("path", "/").rstrip("/") or "/") != prefix:
                continue
            if prefix == prefixes[-1] or int(entry.get("propagate", 1)):
                granted = resolve_privs(entry.get("privs"))
    return granted


@dataclass
class Identity:
    """Who sent a request: user, token (if any) and how."""

    userid: str
    tokenid: str | None
    access: dict[str, Any]

    @property
    def auth_id(self) -> str:
        """ "user@realm!token" for tokens, "user@realm" for tickets."""
        return f"{self.userid}!{self.tokenid}" if self.tokenid else self.userid

    @property
    def is_root_ticket(self) -> bool:
        """True only for root@pam logged in with a password (not any of its tokens)."""
        return self.userid == "root@pam" and self.tokenid is None

    def privileges(self, path: str) -> set[str]:
        """The privileges this identity holds on an ACL path."""
        if self.userid == "root@pam":
            user = set(ALL_PRIVS)
        else:
            user = acl_privs(self.access.get("users", {}).get(self.userid, {}).get("acl", []), path)
        if self.tokenid is None:
            return user
        token = self.access.get("tokens", {}).get(self.auth_id, {})
        if not int(token.get("privsep", 1)):
            return user
        return user & acl_privs(token.get("acl", []), path)

    def acl_paths(self) -> list[str]:
        """Every ACL path that names this identity (for /access/permissions)."""
        paths = {"/"}
        users = self.access.get("users", {})
        paths |= {e.get("path", "/") for e in users.get(self.userid, {}).get("acl", [])}
        if self.tokenid:
            token = self.access.get("tokens", {}).get(self.auth_id, {})
            paths |= {e.get("path", "/") for e in token.get("acl", [])}
        return sorted(paths)


def _sign(key: str, text: str) -> str:
    mac = hmac.new(key.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode().rstrip("=")


class Authenticator:
    """Checks tokens and tickets against the state dir's secrets."""

    def __init__(self, secrets: dict[str, str], clock: Callable[[], float]) -> None:
        self.secrets = secrets
        self.clock = clock

    def login(
        self, access: dict[str, Any], username: str, password: str, realm: str = ""
    ) -> dict[str, Any]:
        """POST /access/ticket: a ticket and CSRF token, or 401 "authentication failure"."""
        # pve-access-control API2/AccessControl.pm create_ticket: `realm` is appended;
        # a name without @realm fails verify_username inside the eval: 401 like any other
        if realm:
            username += f"@{realm}"
        known = username == "root@pam" or username in access.get("users", {})
        expected = self.secrets.get(username)
        renewal = self.ticket_user(password) == username  # a valid ticket renews itself
        if (
            not known
            or expected is None
            or not (renewal or hmac.compare_digest(expected, password))
        ):
            raise ApiFailure(401, "authentication failure")
        stamp = f"{int(self.clock()):08X}"
        plain = f"PVE:{username}:{stamp}"
        key = self.secrets["ticket-key"]
        return {
            "username": username,
            "ticket": f"{plain}::{_sign(key, plain)}",
            "CSRFPreventionToken": f"{stamp}:{_sign(key, 'csrf' + username + stamp)}",
            "cap": {},
        }

    def ticket_user(self, ticket: str) -> str | None:
        """The user of a valid, unexpired ticket "PVE:user@realm:HEXTIME::SIGNATURE"."""
        plain, _, sig = ticket.partition("::")
        fields = plain.split(":")
        if len(fields) != 3 or fields[0] != "PVE":
            return None
        if not hmac.compare_digest(_sign(self.secrets["ticket-key"], plain), sig):
            return None
        try:
            issued = int(fields[2], 16)
        except ValueError:
            return None
        age = self.clock() - issued  # AccessControl.pm verify_ticket: -grace .. lifetime
        return fields[1] if -AUTH_GRACE <= age <= TICKET_LIFETIME else None

    def authenticate(
        self, access: dict[str, Any], method: str, headers: dict[str, str], path: str = ""
    ) -> Identity:
        """The identity of a request, or 401 as pve-manager PVE/HTTPServer.pm auth_handler
        answers: "No ticket" without credentials, "Authentication failed!" for a bad
        token or ticket, "Permission denied - invalid csrf token" (pve-common
        PVE/Ticket.pm). Uploads skip the CSRF check (their permission is checked here)."""
        auth = headers.get("authorization", "")
        ticket = _cookie(headers.get("cookie", ""), "PVEAuthCookie")
        if ticket is None and auth.startswith("PVEAPIToken="):
            full, sep, secret = auth.removeprefix("PVEAPIToken=").strip().partition("=")
            user, _, token = full.partition("!")
            known = full in access.get("tokens", {}) and full in self.secrets
            if not (sep and token and known and hmac.compare_digest(self.secrets[full], secret)):
                raise AuthFailure(401, "Authentication failed!")
            return Identity(user, token, access)
        if ticket is None:
            raise AuthFailure(401, "No ticket")
        userid = self.ticket_user(ticket)
        if userid is None:
            raise AuthFailure(401, "Authentication failed!")
        who = Identity(userid, None, access)
        upload = UPLOAD_RE.match(path) if method == "POST" else None
        if upload:
            from provision.sim.perms import require

            require(who, f"/storage/{upload.group(1)}", ["Datastore.AllocateTemplate"])
        elif method != "GET" and not self._csrf_ok(userid, headers.get("csrfpreventiontoken", "")):
            raise ApiFailure(401, "Permission denied - invalid csrf token")
        return who

    def _csrf_ok(self, userid: str, csrf: str) -> bool:
        """pve-common PVE/Ticket.pm verify_csrf_prevention_token: signature, and an age
        between -300 s and the ticket lifetime."""
        stamp = csrf.partition(":")[0]
        good = _sign(self.secrets["ticket-key"], "csrf" + userid + stamp)
        signed = hmac.compare_digest(csrf, f"{stamp}:{good}")
        if not (re.fullmatch(r"[A-Z0-9]{8}", stamp) and signed):
            return False
        return -AUTH_GRACE < self.clock() - int(stamp, 16) < TICKET_LIFETIME


def _cookie(header: str, name: str) -> str | None:
    from urllib.parse import unquote

    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return unquote(value)
    return None
