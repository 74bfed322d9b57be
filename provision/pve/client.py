"""The Proxmox API client: one per inventory host, domain errors, bounded retries, counting.

Built on requests directly rather than proxmoxer: proxmoxer 2.3 logs in with a bare
`requests.post` outside its session (so a pinned fingerprint or adapter cannot cover the
password login) and disables urllib3's TLS warnings globally on import. Here every
request, the ticket login included, goes through one session whose TLS settings
connect() chose, and every failure becomes an aihost error that names the host.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from provision.errors import ApiError, AuthError
from provision.inventory.secrets import redact
from provision.pve.tls import tls_failure
from provision.pve.translate import Caller, http_error, is_transient, proxmox_message

if TYPE_CHECKING:
    import requests

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
GET_ATTEMPTS = 3
RETRY_DELAYS = (0.25, 1.0)
TICKET_RENEW_AFTER = 3600.0  # tickets live 2 h; renew well before


class PveClient:
    """Requests to one Proxmox API endpoint; paths are API paths like /nodes/pve1/qemu."""

    def __init__(
        self,
        *,
        url: str,
        host_name: str,
        node: str,
        session: requests.Session,
        token: tuple[str, str] | None = None,
        password: tuple[str, str] | None = None,
        secret_source: str = "",
        pinned: str | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (token is None) == (password is None):
            raise ValueError("give exactly one of token=(id, secret) or password=(user, pw)")
        self.url = url.rstrip("/")
        self.base = f"{self.url}/api2/json"
        self.host_name = host_name
        self.node = node
        self.session = session
        self.pinned = pinned
        # passed with every request: a session-level CA file would lose to REQUESTS_CA_BUNDLE
        self.verify = verify
        self.timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
        self._sleep = sleep
        self._clock = clock
        self._count = 0
        self._lock = threading.Lock()
        self._login_lock = threading.Lock()  # one login even when threads start together
        self._token = token
        self._password = password
        self._ticket: tuple[str, str, float] | None = None  # ticket, csrf, obtained at
        self.auth_id = token[0] if token else password[0]  # type: ignore[index]
        self.is_root_ticket = password is not None and password[0] == "root@pam"
        self._caller = Caller(host_name, self.auth_id, token is not None, secret_source)
        if token is not None:
            session.headers["Authorization"] = f"PVEAPIToken={token[0]}={token[1]}"

    # ---- public verbs -------------------------------------------------------------
    def get(self, path: str, **params: Any) -> Any:
        """GET path with query params; retried (bounded) on transient failures."""
        return self.request("GET", path, params)

    def post(self, path: str, **params: Any) -> Any:
        """POST path with form params (returns a UPID string for tasks)."""
        return self.request("POST", path, params)

    def put(self, path: str, **params: Any) -> Any:
        """PUT path with form params."""
        return self.request("PUT", path, params)

    def delete(self, path: str, **params: Any) -> Any:
        """DELETE path with query params."""
        return self.request("DELETE", path, params)

    def upload(self, path: str, *, filename: str, data: bytes, **params: Any) -> Any:
        """POST a file as multipart (the storage upload API's `filename` part)."""
        files = {"filename": (filename, data, "application/octet-stream")}
        return self.request("POST", path, params, files=files)

    def request_count(self) -> int:
        """HTTP requests sent so far (logins and retries included)."""
        with self._lock:
            return self._count

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    # ---- machinery ----------------------------------------------------------------
    def request(self, method: str, path: str, params: dict[str, Any], *, files: Any = None) -> Any:
        """Send one API request and return its `data`, or raise an aihost error."""
        if not path.startswith("/"):
            path = "/" + path
        encoded = encode_params(params)
        attempts = GET_ATTEMPTS if method == "GET" else 1
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= attempts
            try:
                response = self._send(method, path, encoded, files)
            except ApiError as exc:
                if last or exc.status != 0:
                    raise
                self._sleep(RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)])
                continue
            status = response.status_code
            if 200 <= status < 300:
                return _data(response)
            if status == 401 and self._password is not None and not relogged:
                # an expired or revoked ticket: log in again, once (401 means nothing ran)
                relogged = True
                with self._lock:
                    self._ticket = None
                attempt -= 1
                continue
            message, _ = proxmox_message(response.reason or "", response.content)
            if not last and is_transient(status, message):
                self._sleep(RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)])
                continue
            raise self._redacted(
                http_error(self._caller, method, path, status, response.reason, response.content)
            )

    def _send(self, method: str, path: str, params: dict[str, Any], files: Any) -> Any:
        import requests

        headers: dict[str, str] = {}
        if self._password is not None:
            ticket, csrf = self._login()
            headers["Cookie"] = f"PVEAuthCookie={ticket}"
            if method != "GET":
                headers["CSRFPreventionToken"] = csrf
        url = self.base + path
        in_query = method in ("GET", "DELETE")
        with self._lock:
            self._count += 1
        try:
            return self.session.request(
                method,
                url,
                params=params if in_query else None,
                data=None if in_query else params,
                files=files,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,  # the API never redirects; a redirect is not followed
            )
        except requests.exceptions.SSLError as exc:
            raise tls_failure(
                exc, host_name=self.host_name, url=self.url, pinned=self.pinned
            ) from None
        except requests.exceptions.ConnectTimeout:
            error = self._unreachable(url, f"no connection within {CONNECT_TIMEOUT:.0f} s")
            error.status = None  # not repeated: a silent host would cost 10 s per attempt
            raise error from None
        except requests.exceptions.ReadTimeout:
            raise ApiError(
                f"host {self.host_name} did not answer {method} {path} within "
                f"{READ_TIMEOUT:.0f} s ({url})",
                status=None,
                hint="the node is overloaded or the request hangs; look at the node's task log",
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise self._unreachable(url, _connection_reason(exc)) from None

    def _unreachable(self, url: str, reason: str) -> ApiError:
        error = ApiError(
            f"cannot reach host {self.host_name} at {url}: {reason}",
            status=0,
            hint="check hosts." + self.host_name + ".api in the inventory, that the node is up "
            "and that pveproxy listens on port 8006",
        )
        return error

    def _login(self) -> tuple[str, str]:
        """The ticket and CSRF token of the password login (obtained or renewed when due)."""
        assert self._password is not None
        with self._login_lock:
            current = self._ticket
            if current is not None and self._clock() - current[2] < TICKET_RENEW_AFTER:
                return current[0], current[1]
            return self._new_ticket(*self._password)

    def _new_ticket(self, user: str, password: str) -> tuple[str, str]:
        import requests

        url = self.base + "/access/ticket"
        with self._lock:
            self._count += 1
        try:
            response = self.session.post(
                url,
                data={"username": user, "password": password},
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise tls_failure(
                exc, host_name=self.host_name, url=self.url, pinned=self.pinned
            ) from None
        except requests.exceptions.RequestException as exc:
            raise self._unreachable(url, _connection_reason(exc)) from None
        if response.status_code != 200:
            raise self._redacted(
                http_error(
                    self._caller,
                    "POST",
                    "/access/ticket",
                    response.status_code,
                    response.reason,
                    response.content,
                )
            )
        data = _data(response) or {}
        if data.get("NeedTFA") or "ticket" not in data or "CSRFPreventionToken" not in data:
            raise AuthError(
                f"the login of {user} on host {self.host_name} needs a second factor (TFA), "
                "which aihost does not support",
                hint="use an API token, or a user without TFA for aihost",
            )
        ticket = (str(data["ticket"]), str(data["CSRFPreventionToken"]), self._clock())
        with self._lock:
            self._ticket = ticket
        return ticket[0], ticket[1]

    def _redacted(self, error: ApiError) -> ApiError:
        secrets = [
            s
            for s in (
                self._token[1] if self._token else None,
                self._password[1] if self._password else None,
                self._ticket[0] if self._ticket else None,
            )
            if s
        ]
        error.message = redact(error.message, secrets)
        error.args = (error.message,)
        return error


def encode_params(params: dict[str, Any]) -> dict[str, Any]:
    """Proxmox's encoding: None dropped, booleans 1/0, lists kept (sent as repeated keys)."""
    encoded: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            encoded[key] = 1 if value else 0
        elif isinstance(value, list | tuple):
            encoded[key] = [1 if v is True else 0 if v is False else v for v in value]
        else:
            encoded[key] = value
    return encoded


def _data(response: Any) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("data") if isinstance(body, dict) else None


def _connection_reason(exc: BaseException) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host name"),
        ("nodename nor servname", "unknown host name"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("timed out", "connection timed out"),
        ("RemoteDisconnected", "the server closed the connection"),
        ("Connection reset", "connection reset by the server"),
    ):
        if needle in text:
            return reason
    return "connection failed"
