"""TLS for the Proxmox API: verification on, SHA-256 pinning, and failures that show the pin.

A pinned certificate is checked by urllib3's assert_fingerprint (the SHA-256 of the
peer's DER certificate), so a self-signed Proxmox certificate needs no CA and no
`verify=False`: the chain is not consulted, the exact certificate is.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.util.ssl_ import create_urllib3_context

from provision.errors import ApiError


def format_fingerprint(hexdigest: str) -> str:
    """'abcd..' -> 'AB:CD:..' (the form pvenode cert info prints and the inventory takes)."""
    text = hexdigest.replace(":", "").upper()
    return ":".join(text[i : i + 2] for i in range(0, len(text), 2))


def der_fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, colon form."""
    return format_fingerprint(hashlib.sha256(der).hexdigest())


def server_fingerprint(url: str, timeout: float = 5.0) -> str | None:
    """The SHA-256 fingerprint of the certificate the server at url presents, or None.

    Only reads the certificate (handshake, no request): used to tell the user what to pin.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 8006
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            context.wrap_socket(sock, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return der_fingerprint(der) if der else None


class PinnedAdapter(HTTPAdapter):
    """An HTTPS adapter that accepts exactly the certificate with the given SHA-256.

    The pin travels in the pool key of every connection pool requests asks for
    (`build_connection_pool_key_attributes`), so it binds direct connections and
    connections tunnelled through an HTTP(S) proxy (CONNECT) alike: requests builds a
    separate ProxyManager for proxies whose pools would otherwise get no pin, and with
    `verify=False` no check at all. The pool managers carry it as well, as a second lock.

    The pools get a TLS context of their own that does not consult CAs (the pin is the
    whole check): without one, urllib3 made a context per connection and loaded the
    system's CA store into it (`load_default_certs`, ~25 ms of CPU for ~140 certificates)
    that a pinned connection never uses.
    """

    def __init__(self, fingerprint: str, **kwargs: Any) -> None:
        self.fingerprint = fingerprint.replace(":", "").lower()
        # the certificate is checked by its fingerprint after the handshake (urllib3
        # _assert_fingerprint), not by a chain: no CA store, as with verify=False before
        self.ssl_context = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Hand the pin to every direct connection pool."""
        kwargs["assert_fingerprint"] = self.fingerprint
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """Hand the pin to every connection pool behind a proxy (CONNECT tunnels)."""
        proxy_kwargs["assert_fingerprint"] = self.fingerprint
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def build_connection_pool_key_attributes(
        self, request: Any, verify: Any, cert: Any = None
    ) -> tuple[Any, Any]:
        """The pool key of each request names the pin (direct and proxied pools)."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        pinned: dict[str, Any] = {
            **pool_kwargs,
            "assert_fingerprint": self.fingerprint,
            "ssl_context": self.ssl_context,
        }
        return host_params, pinned

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Send with chain verification replaced by the fingerprint check (never unchecked)."""
        kwargs["verify"] = False
        return super().send(request, **kwargs)


def tls_failure(exc: BaseException, *, host_name: str, url: str, pinned: str | None) -> ApiError:
    """The error for a failed TLS verification, naming the server's actual fingerprint."""
    actual = _seen_fingerprint(exc) or server_fingerprint(url)
    shown = actual or "(could not be read)"
    reason = _reason(exc)
    if pinned:
        return ApiError(
            f"TLS: the certificate of host {host_name} ({url}) does not match the pinned "
            f"fingerprint: the server presents SHA-256 {shown}, the inventory pins {pinned}",
            hint="if the node's certificate was renewed on purpose (check with `pvenode cert "
            f'info` on the node), pin the new one: tls: {{fingerprint: "{shown}"}}; '
            "otherwise something is intercepting the connection",
        )
    return ApiError(
        f"TLS verification failed for host {host_name} ({url}): {reason}; the server's "
        f"certificate SHA-256 fingerprint is {shown}",
        hint=f"if that is your Proxmox (compare with `pvenode cert info` on the node), pin it "
        f'in the inventory: hosts.{host_name}.tls: {{fingerprint: "{shown}"}}, or give the CA '
        "that signed it as tls: {ca_file: /path/to/ca.pem}",
    )


def _seen_fingerprint(exc: BaseException) -> str | None:
    """The fingerprint urllib3 reported in a pin mismatch ('... got "abcd.."'), if any.

    It is the certificate this very connection saw, also through a proxy, where a new
    direct connection to read it would reach another server or none.
    """
    match = re.search(
        r'Fingerprints did not match\. Expected "[0-9a-f]+", got "([0-9a-f]+)"', str(exc)
    )
    return format_fingerprint(match.group(1)) if match else None


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("certificate verify failed: ", "CERTIFICATE_VERIFY_FAILED"):
        if marker in text:
            tail = text.split(marker, 1)[1]
            return "certificate verify failed: " + tail.split("(_ssl")[0].strip(" ')\"")
    if "hostname" in text.lower() and "match" in text.lower():
        return "the certificate does not name this host"
    return "the certificate could not be verified"
