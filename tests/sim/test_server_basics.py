"""The wire protocol: HTTPS with a pinned self-signed certificate, {"data": ...}, token
and ticket auth with CSRF, 401/400/501 shapes, the request log, schema validation."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time

import pytest
import requests
from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

from provision.sim.server import SimServer, _HttpServer


def test_version_over_https_with_the_servers_certificate(sim):
    assert sim.api().version.get()["release"] == "9.1"
    pem = sim.server.cert_path.read_text()
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    assert sim.server.fingerprint.replace(":", "") == digest
    raw = requests.get(f"{sim.server.url}/api2/json/version", verify=str(sim.server.cert_path))
    assert raw.status_code == 401 and raw.reason == "No ticket"


def test_certificate_and_secrets_are_kept_per_state_dir(sim):
    again = SimServer(sim.state_dir, sftp_port=None, durations={}, auth_delay=0)
    assert again.fingerprint == sim.server.fingerprint
    assert again.token_secret == sim.server.token_secret
    assert again.root_password == sim.server.root_password


def test_bad_token_secret_is_401_after_the_configured_delay(tmp_path):
    server = SimServer(tmp_path, sftp_port=None, durations={}, auth_delay=0.3).start()
    try:
        user, name = server.token_id.split("!")
        api = ProxmoxAPI(
            "127.0.0.1",
            port=server.port,
            user=user,
            token_name=name,
            token_value="00000000-0000-0000-0000-000000000000",
            verify_ssl=str(server.cert_path),
        )
        started = time.monotonic()
        with pytest.raises(ResourceException) as caught:
            api.cluster.resources.get(type="vm")
        # pve-manager PVE/HTTPServer.pm auth_handler dies "Authentication failed!"; the
        # answer carries it as reason phrase only (pve-http-server AnyEvent.pm)
        assert caught.value.status_code == 401
        assert caught.value.content == "Authentication failed!"
        assert time.monotonic() - started >= 0.3
    finally:
        server.stop()


def test_ticket_login_needs_csrf_token_for_writes(sim):
    root = sim.root()
    assert root.nodes("pve1").config.get()["digest"]
    session = requests.Session()
    login = session.post(
        f"{sim.server.url}/api2/json/access/ticket",
        data={"username": "root@pam", "password": sim.server.root_password},
        verify=str(sim.server.cert_path),
    ).json()["data"]
    session.cookies.set("PVEAuthCookie", login["ticket"])
    url = f"{sim.server.url}/api2/json/nodes/pve1/config"
    refused = session.put(url, data={"description": "x"}, verify=str(sim.server.cert_path))
    assert refused.status_code == 401
    assert refused.reason == "Permission denied - invalid csrf token"
    ok = session.put(
        url,
        data={"description": "x"},
        verify=str(sim.server.cert_path),
        headers={"CSRFPreventionToken": login["CSRFPreventionToken"]},
    )
    assert ok.status_code == 200 and ok.json() == {"data": None}


def test_wrong_password_is_refused(sim):
    with pytest.raises(Exception, match="authentication failure|401"):
        ProxmoxAPI(
            "127.0.0.1",
            port=sim.server.port,
            user="root@pam",
            password="wrong",
            verify_ssl=str(sim.server.cert_path),
        )


def test_nextid_is_a_string_and_resources_list_templates(sim):
    api = sim.api()
    assert api.cluster.nextid.get() == "100"
    names = {vm["name"]: vm for vm in api.cluster.resources.get(type="vm")}
    assert names["ubuntu-2404-cloud"]["template"] == 1
    assert names["debian-12-cloud"]["vmid"] == 9001
    assert [n["node"] for n in api.nodes.get()] == ["pve1"]


def test_misspelt_parameter_is_refused_by_the_schema_as_proxmox_does(sim):
    if sim.server.app.validator is None:
        pytest.skip("../shared/pve/apidoc.json is absent: no schema validation")
    sim.allow_violations = True
    api = sim.api()
    with pytest.raises(ResourceException) as caught:
        api.nodes("pve1").qemu(9000).config.put(coress=4)
    assert caught.value.status_code == 400
    assert caught.value.content == "Parameter verification failed."
    assert "coress" in caught.value.errors
    with pytest.raises(ResourceException) as bad:
        api.nodes("pve1").qemu(9000).config.put(hostpci0="mapping=gpu,pcie=maybe")
    assert bad.value.status_code == 400 and "hostpci0" in bad.value.errors
    assert len(sim.server.violations()) == 2


def test_unknown_path_is_501(sim):
    with pytest.raises(ResourceException) as caught:
        sim.api().nodes("pve1").nonsense.get()
    assert caught.value.status_code == 501


def test_request_log_redacts_secrets_and_names_the_caller(sim):
    sim.root().version.get()
    sim.api().cluster.nextid.get()
    log = requests.get(
        f"{sim.server.url}/_sim/requests?since=0", verify=str(sim.server.cert_path)
    ).json()["data"]
    login = next(e for e in log if e["path"].endswith("/access/ticket"))
    assert login["params"]["password"] == "<redacted>"
    assert sim.server.root_password not in str(log)
    assert log[-1]["auth"] == "root@pam!aihost" and log[-1]["status"] == 200
    assert log[-1]["duration"] >= 0
    assert (
        requests.get(
            f"{sim.server.url}/_sim/requests?since={len(log)}", verify=str(sim.server.cert_path)
        ).json()["data"]
        == []
    )


def test_error_message_is_reason_phrase_and_body(sim):
    headers = {"Authorization": f"PVEAPIToken={sim.server.token_id}={sim.server.token_secret}"}
    resp = requests.get(
        f"{sim.server.url}/api2/json/nodes/pve1/qemu/555/config",
        headers=headers,
        verify=str(sim.server.cert_path),
    )
    text = "Configuration file 'nodes/pve1/qemu-server/555.conf' does not exist"
    assert resp.status_code == 500 and resp.reason == text
    assert resp.json() == {"data": None, "message": text + "\n"}


def test_the_https_loop_ends_at_stop_whatever_its_poll_interval(tmp_path, monkeypatch):
    # socketserver's loop looks for a shutdown once per poll_interval, so every simulator
    # stop waited for it; the simulator's is woken at once, and closes what it opened
    real = _HttpServer.serve_forever

    def polling_rarely(self: _HttpServer, poll_interval: float = 0.5) -> None:
        real(self, poll_interval=3600)

    monkeypatch.setattr(_HttpServer, "serve_forever", polling_rarely)
    server = SimServer(tmp_path, sftp_port=None, durations={}, auth_delay=0).start()
    port = server.port
    http = server._http
    assert http is not None
    opened = [http.socket, http._wakeup._reader, http._wakeup._writer]
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=60)
    assert not stopper.is_alive()
    assert not [t.name for t in threading.enumerate() if t.name == f"sim-https-{port}"]
    assert [s.fileno() for s in opened] == [-1, -1, -1]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
