"""TLS against a real HTTPS server on 127.0.0.1: pinning, CA files, and what a failure shows."""

from __future__ import annotations

import warnings

import pytest
from pve_testing import pem_fingerprint

from provision.errors import ApiError, InputError
from provision.inventory.model import Inventory
from provision.pve.connect import connect
from provision.pve.tls import format_fingerprint, server_fingerprint

SECRET = "0b7c2e1a-aaaa-bbbb-cccc-123456789abc"


def _inventory(url: str, tls: dict | None = None) -> Inventory:
    host = {"api": url, "token": {"id": "aihost@pve!prov", "secret_env": "AIHOST_TEST_TOKEN"}}
    if tls is not None:
        host["tls"] = tls
    return Inventory.model_validate({"hosts": {"pve1": host}})


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("AIHOST_TEST_TOKEN", SECRET)


def test_format_fingerprint():
    assert format_fingerprint("ab01" * 16) == ":".join(["AB", "01"] * 16)


def test_server_fingerprint_reads_the_presented_certificate(self_signed_server):
    assert server_fingerprint(self_signed_server.url) == pem_fingerprint(self_signed_server.cert)


def test_right_pin_works_without_a_ca(self_signed_server):
    pin = pem_fingerprint(self_signed_server.cert)
    client = connect(_inventory(self_signed_server.url, {"fingerprint": pin}), "pve1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no InsecureRequestWarning: the pin is a verification
        answer = client.get("/version")
    assert answer == {"path": "/api2/json/version", "auth": True}
    assert client.pinned == pin


def test_a_pinned_connection_loads_no_ca_store(self_signed_server, monkeypatch):
    # the pin is the whole check: the system's CA store (~25 ms of CPU to load) is never
    # consulted, so it is not loaded for every connection either
    import ssl

    loads: list[object] = []
    real = ssl.SSLContext.load_default_certs
    monkeypatch.setattr(
        ssl.SSLContext, "load_default_certs", lambda ctx, *a: loads.append(ctx) or real(ctx, *a)
    )
    pin = pem_fingerprint(self_signed_server.cert)
    client = connect(_inventory(self_signed_server.url, {"fingerprint": pin}), "pve1")
    assert client.get("/version")["auth"] is True
    client.session.close()  # a new connection for the next request
    assert client.get("/version")["auth"] is True
    assert loads == []
    wrong = connect(_inventory(self_signed_server.url, {"fingerprint": "AB:" * 31 + "AB"}), "pve1")
    with pytest.raises(ApiError, match="does not match the pinned fingerprint"):
        wrong.get("/version")
    assert len(self_signed_server.seen) == 2  # nothing was sent over the wrong pin


def test_lower_case_pin_is_accepted(self_signed_server):
    pin = pem_fingerprint(self_signed_server.cert).lower()
    client = connect(_inventory(self_signed_server.url, {"fingerprint": pin}), "pve1")
    assert client.get("/version")["auth"] is True


def test_wrong_pin_fails_showing_the_actual_fingerprint(self_signed_server):
    actual = pem_fingerprint(self_signed_server.cert)
    wrong = ":".join(["AB"] * 32)
    client = connect(_inventory(self_signed_server.url, {"fingerprint": wrong}), "pve1")
    with pytest.raises(ApiError) as caught:
        client.get("/version")
    text = str(caught.value)
    assert "does not match the pinned fingerprint" in text
    assert f"the server presents SHA-256 {actual}" in text
    assert f'tls: {{fingerprint: "{actual}"}}' in text
    assert self_signed_server.seen == []  # nothing was sent to the impostor
    assert SECRET not in text


def test_self_signed_without_pin_fails_with_fingerprint_and_how_to_pin(self_signed_server):
    actual = pem_fingerprint(self_signed_server.cert)
    client = connect(_inventory(self_signed_server.url), "pve1")
    with pytest.raises(ApiError) as caught:
        client.get("/version")
    error = caught.value
    assert error.message.startswith(
        f"TLS verification failed for host pve1 ({self_signed_server.url}): certificate verify "
        "failed"
    )
    assert f"the server's certificate SHA-256 fingerprint is {actual}" in error.message
    assert error.hint and f'hosts.pve1.tls: {{fingerprint: "{actual}"}}' in error.hint
    assert self_signed_server.seen == []
    assert client.request_count() == 1  # a TLS failure is not retried


def test_ca_file_works(ca_signed_server, certs):
    client = connect(_inventory(ca_signed_server.url, {"ca_file": str(certs.ca_pem)}), "pve1")
    assert client.get("/cluster/resources", type="vm")["path"] == (
        "/api2/json/cluster/resources?type=vm"
    )


def test_wrong_ca_file_fails(self_signed_server, certs):
    client = connect(_inventory(self_signed_server.url, {"ca_file": str(certs.ca_pem)}), "pve1")
    with pytest.raises(ApiError, match="TLS verification failed for host pve1"):
        client.get("/version")


def test_missing_ca_file_is_input_error(tmp_path):
    inv = _inventory("https://127.0.0.1:8006", {"ca_file": str(tmp_path / "nope.pem")})
    with pytest.raises(InputError, match="nope.pem does not exist"):
        connect(inv, "pve1")


def test_ticket_login_goes_through_the_pin(self_signed_server, monkeypatch):
    """The password login is covered by the pin too: a wrong pin stops it before it is sent."""
    monkeypatch.setenv("AIHOST_TEST_PW", "root-password")
    inv = Inventory.model_validate(
        {
            "hosts": {
                "pve1": {
                    "api": self_signed_server.url,
                    "password": {"user": "root@pam", "secret_env": "AIHOST_TEST_PW"},
                    "tls": {"fingerprint": ":".join(["CD"] * 32)},
                }
            }
        }
    )
    client = connect(inv, "pve1")
    assert client.is_root_ticket
    with pytest.raises(ApiError, match="does not match the pinned fingerprint") as caught:
        client.get("/version")
    assert "root-password" not in str(caught.value)
    assert self_signed_server.seen == []


def test_ticket_login_over_a_right_pin(self_signed_server, monkeypatch):
    monkeypatch.setenv("AIHOST_TEST_PW", "root-password")
    inv = Inventory.model_validate(
        {
            "hosts": {
                "pve1": {
                    "api": self_signed_server.url,
                    "password": {"user": "root@pam", "secret_env": "AIHOST_TEST_PW"},
                    "tls": {"fingerprint": pem_fingerprint(self_signed_server.cert)},
                }
            }
        }
    )
    client = connect(inv, "pve1")
    answer = client.post("/nodes/pve1/qemu/100/status/start")
    assert answer == {"csrf": "CSRF", "cookie": "PVEAuthCookie=PVE:root@pam:TICKET"}
    assert self_signed_server.seen == [
        "/api2/json/access/ticket",
        "/api2/json/nodes/pve1/qemu/100/status/start",
    ]
