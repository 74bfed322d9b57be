"""PveClient request shapes and error translation, against mocked HTTP (responses)."""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from pve_testing import API, TOKEN_ID, TOKEN_SECRET, URL, make_client, schema_violations

from provision.errors import EXIT_API, ApiError, AuthError, PermissionDenied

UPID = "UPID:pve1:00001234:00005678:65A0B0C0:qmstart:100:aihost@pve!prov:"


def _form(call) -> dict[str, list[str]]:
    return parse_qs(
        call.request.body if isinstance(call.request.body, str) else call.request.body.decode(),
        keep_blank_values=True,
    )


@responses.activate
def test_token_header_and_no_csrf(client):
    responses.get(f"{API}/cluster/resources", json={"data": []})
    responses.post(f"{API}/nodes/pve1/qemu/100/status/start", json={"data": UPID})
    assert client.get("/cluster/resources", type="vm") == []
    assert client.post("/nodes/pve1/qemu/100/status/start", timeout=45) == UPID
    for call in responses.calls:
        assert call.request.headers["Authorization"] == f"PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}"
        assert "CSRFPreventionToken" not in call.request.headers
        assert "Cookie" not in call.request.headers
    assert urlsplit(responses.calls[0].request.url).query == "type=vm"
    assert _form(responses.calls[1]) == {"timeout": ["45"]}
    assert client.request_count() == 2
    assert schema_violations(responses.calls) == []


@responses.activate
def test_params_encoding_bool_none_list(client):
    responses.post(f"{API}/nodes/pve1/qemu/100/config", json={"data": None})
    responses.post(f"{API}/cluster/mapping/pci", json={"data": None})
    responses.delete(f"{API}/nodes/pve1/qemu/100", json={"data": UPID})
    client.post(
        "/nodes/pve1/qemu/100/config",
        agent=True,
        onboot=False,
        description=None,
        hostpci0="mapping=gpu0,pcie=1",
    )
    client.post(
        "/cluster/mapping/pci",
        id="gpu0",
        map=["node=pve1,path=0000:01:00,id=10de:2684", "node=pve2,path=0000:02:00,id=10de:2684"],
    )
    client.delete("/nodes/pve1/qemu/100", purge=1, **{"destroy-unreferenced-disks": 1})
    assert _form(responses.calls[0]) == {
        "agent": ["1"],
        "onboot": ["0"],
        "hostpci0": ["mapping=gpu0,pcie=1"],
    }
    assert _form(responses.calls[1])["map"] == [
        "node=pve1,path=0000:01:00,id=10de:2684",
        "node=pve2,path=0000:02:00,id=10de:2684",
    ]
    delete = responses.calls[2].request
    assert delete.body is None
    assert parse_qs(urlsplit(delete.url).query) == {
        "purge": ["1"],
        "destroy-unreferenced-disks": ["1"],
    }
    assert schema_violations(responses.calls) == []


@responses.activate
def test_ticket_login_cookie_and_csrf_once():
    responses.post(
        f"{API}/access/ticket",
        json={
            "data": {
                "ticket": "PVE:root@pam:65A0B0C0::c2lnbmF0dXJl",
                "CSRFPreventionToken": "65A0B0C0:csrf",
                "username": "root@pam",
            }
        },
    )
    responses.get(f"{API}/nodes/pve1/qemu/100/config", json={"data": {"digest": "abc"}})
    responses.put(f"{API}/nodes/pve1/qemu/100/config", json={"data": None})
    client = make_client(password=("root@pam", "hunter2-secret"))
    assert client.auth_id == "root@pam" and client.is_root_ticket
    client.get("/nodes/pve1/qemu/100/config")
    client.put("/nodes/pve1/qemu/100/config", hostpci0="0000:01:00,pcie=1", digest="abc")
    login, get, put = responses.calls
    assert _form(login) == {"username": ["root@pam"], "password": ["hunter2-secret"]}
    assert "Authorization" not in get.request.headers
    assert get.request.headers["Cookie"] == "PVEAuthCookie=PVE:root@pam:65A0B0C0::c2lnbmF0dXJl"
    assert "CSRFPreventionToken" not in get.request.headers
    assert put.request.headers["CSRFPreventionToken"] == "65A0B0C0:csrf"
    assert client.request_count() == 3
    assert schema_violations(responses.calls) == []


@responses.activate
def test_expired_ticket_logs_in_again_once():
    responses.post(
        f"{API}/access/ticket",
        json={"data": {"ticket": "T1", "CSRFPreventionToken": "C1", "username": "ops@pve"}},
    )
    responses.get(f"{API}/version", status=401, json={"data": None})
    responses.get(f"{API}/version", json={"data": {"version": "9.1.3"}})
    client = make_client(password=("ops@pve", "pw"))
    assert not client.is_root_ticket
    assert client.get("/version") == {"version": "9.1.3"}
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "POST", "GET"]


@responses.activate
def test_one_login_for_concurrent_threads_and_renewal_after_an_hour():
    import threading

    responses.post(
        f"{API}/access/ticket",
        json={"data": {"ticket": "T", "CSRFPreventionToken": "C", "username": "root@pam"}},
    )
    responses.get(f"{API}/version", json={"data": {}})
    now = [0.0]
    client = make_client(password=("root@pam", "pw"), clock=lambda: now[0])
    threads = [threading.Thread(target=client.get, args=("/version",)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    methods = [c.request.method for c in responses.calls]
    assert methods.count("POST") == 1 and methods.count("GET") == 6
    now[0] = 3601.0
    client.get("/version")
    assert [c.request.method for c in responses.calls][-2:] == ["POST", "GET"]
    assert client.request_count() == 9


@responses.activate
def test_tfa_login_is_refused_clearly():
    responses.post(
        f"{API}/access/ticket",
        json={
            "data": {
                "ticket": "PVE:partial",
                "CSRFPreventionToken": "C",
                "username": "root@pam",
                "NeedTFA": 1,
            }
        },
    )
    with pytest.raises(AuthError, match="second factor"):
        make_client(password=("root@pam", "pw")).get("/version")


@responses.activate
def test_wrong_password_is_auth_error_without_secret():
    responses.post(
        f"{API}/access/ticket",
        status=401,
        json={"data": None, "message": "authentication failure\n"},
    )
    client = make_client(
        password=("root@pam", "not-the-password"), secret_source="environment variable PVE_PASSWORD"
    )
    with pytest.raises(AuthError) as caught:
        client.get("/version")
    text = str(caught.value)
    assert "password of root@pam for host pve1 was refused" in text
    assert "PVE_PASSWORD" in text and "not-the-password" not in text
    assert caught.value.exit_code == EXIT_API


@responses.activate
def test_401_token_refused(client):
    responses.get(
        f"{API}/cluster/resources",
        status=401,
        json={"data": None},
        headers={},
    )
    with pytest.raises(AuthError) as caught:
        client.get("/cluster/resources", type="vm")
    text = str(caught.value)
    assert text.startswith(
        "authentication failure: the API token aihost@pve!prov for host pve1 was refused"
    )
    assert "PVE_TOKEN" in text
    assert TOKEN_SECRET not in text
    assert len(responses.calls) == 1  # never retried


@responses.activate
def test_403_names_privilege_path_and_grant(client):
    responses.post(
        f"{API}/nodes/pve1/qemu/100/status/start",
        status=403,
        json={"data": None, "message": "Permission check failed (/vms/100, VM.PowerMgmt)\n"},
    )
    with pytest.raises(PermissionDenied) as caught:
        client.post("/nodes/pve1/qemu/100/status/start")
    error = caught.value
    assert "missing privilege VM.PowerMgmt on /vms/100" in error.message
    assert (
        error.hint and "pveum acl modify /vms/100 --tokens 'aihost@pve!prov' --roles" in error.hint
    )
    assert "--privs VM.PowerMgmt" in error.hint
    assert error.status == 403


@responses.activate
def test_403_other_message_kept(client):
    responses.get(
        f"{API}/nodes/pve1/qemu/100/config",
        status=403,
        json={"data": None, "message": "Permission check failed (user != root@pam)"},
    )
    with pytest.raises(PermissionDenied, match=r"user != root@pam"):
        client.get("/nodes/pve1/qemu/100/config")


@responses.activate
def test_400_per_field_errors(client):
    responses.post(
        f"{API}/nodes/pve1/qemu/100/config",
        status=400,
        json={
            "data": None,
            "message": "Parameter verification failed.",
            "errors": {"memory": "value must have a minimum value of 16\n", "cores": "bad"},
        },
    )
    with pytest.raises(ApiError) as caught:
        client.post("/nodes/pve1/qemu/100/config", memory=1)
    error = caught.value
    assert error.status == 400
    assert error.errors == {"memory": "value must have a minimum value of 16", "cores": "bad"}
    assert "Parameter verification failed. (cores: bad; memory: value must have" in error.message
    assert "POST /nodes/pve1/qemu/100/config" in error.message


@responses.activate
def test_500_message_from_reason_or_body(client):
    message = "only root can set 'hostpci0' config for non-mapped devices"
    responses.post(
        f"{API}/nodes/pve1/qemu/100/config",
        status=500,
        json={"data": None, "message": message + "\n"},
    )
    with pytest.raises(ApiError) as caught:
        client.post("/nodes/pve1/qemu/100/config", hostpci0="0000:01:00")
    assert caught.value.status == 500
    assert (
        caught.value.message == f"POST /nodes/pve1/qemu/100/config on host pve1 failed: {message}"
    )
    assert len(responses.calls) == 1  # a POST is never repeated


@responses.activate
def test_secret_echoed_by_server_is_redacted(client):
    responses.get(
        f"{API}/version",
        status=500,
        json={"data": None, "message": f"weird proxy echo {TOKEN_SECRET}"},
    )
    with pytest.raises(ApiError) as caught:
        client.get("/version")
    assert TOKEN_SECRET not in str(caught.value)
    assert "***" in str(caught.value)


@responses.activate
def test_595_names_node_problem(client):
    responses.get(
        f"{API}/nodes/pve2/status", status=595, json={"data": None, "message": "No route to host"}
    )
    with pytest.raises(ApiError) as caught:
        client.get("/nodes/pve2/status")
    assert caught.value.status == 595
    assert "could not reach the node" in caught.value.message
    assert len(responses.calls) == 3  # GET: retried, bounded


@responses.activate
def test_transient_get_retried_then_succeeds():
    slept: list[float] = []
    client = make_client(sleep=slept.append)
    responses.get(
        f"{API}/cluster/resources",
        status=500,
        json={"data": None, "message": "got no worker upid - unable to fork worker"},
    )
    responses.get(f"{API}/cluster/resources", json={"data": [{"vmid": 100}]})
    assert client.get("/cluster/resources") == [{"vmid": 100}]
    assert len(responses.calls) == 2
    assert len(slept) == 1 and 0 < slept[0] <= 1
    assert client.request_count() == 2


@responses.activate
def test_transient_post_not_retried(client):
    responses.post(
        f"{API}/nodes/pve1/qemu",
        status=500,
        json={"data": None, "message": "got no worker upid - unable to fork worker"},
    )
    with pytest.raises(ApiError, match="got no worker upid"):
        client.post("/nodes/pve1/qemu", vmid=100)
    assert len(responses.calls) == 1


@responses.activate
def test_non_transient_get_not_retried(client):
    responses.get(
        f"{API}/nodes/pve1/qemu/999/config",
        status=500,
        json={
            "data": None,
            "message": "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist",
        },
    )
    with pytest.raises(ApiError, match="does not exist"):
        client.get("/nodes/pve1/qemu/999/config")
    assert len(responses.calls) == 1


@responses.activate
def test_connection_error_mocked_get_retries_post_does_not(client):
    refused = requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    responses.get(f"{API}/version", body=refused)
    responses.post(f"{API}/nodes/pve1/qemu/100/status/stop", body=refused)
    with pytest.raises(ApiError) as caught:
        client.get("/version")
    assert caught.value.message == (f"cannot reach host pve1 at {API}/version: connection refused")
    assert client.request_count() == 3
    with pytest.raises(ApiError):
        client.post("/nodes/pve1/qemu/100/status/stop")
    assert client.request_count() == 4


@responses.activate
def test_read_timeout_is_not_repeated(client):
    responses.get(
        f"{API}/cluster/resources", body=requests.exceptions.ReadTimeout("read timed out")
    )
    with pytest.raises(
        ApiError, match=r"host pve1 did not answer GET /cluster/resources within 60 s"
    ):
        client.get("/cluster/resources")
    assert len(responses.calls) == 1


def test_timeouts_are_connect_10_read_60(client):
    assert client.timeout == (10.0, 60.0)


def test_connection_refused_real_socket():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    client = make_client(url=url)
    with pytest.raises(ApiError) as caught:
        client.get("/version")
    assert (
        caught.value.message
        == f"cannot reach host pve1 at {url}/api2/json/version: connection refused"
    )
    assert caught.value.hint and "hosts.pve1.api" in caught.value.hint
    assert client.request_count() == 3


@responses.activate
def test_upload_is_multipart_with_filename_part(client):
    responses.post(f"{API}/nodes/pve1/storage/local/upload", json={"data": UPID})
    result = client.upload(
        "/nodes/pve1/storage/local/upload", content="iso", filename="cidata.iso", data=b"ISO-BYTES"
    )
    assert result == UPID
    request = responses.calls[0].request
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    body = request.body
    assert b'name="content"' in body and b"iso" in body
    assert b'name="filename"; filename="cidata.iso"' in body and b"ISO-BYTES" in body
    assert schema_violations(responses.calls) == []


def test_schema_check_is_live():
    """The request-shape checks above compare against Proxmox's schema, when it is there."""
    from pve_testing import schemas

    if not schemas():
        pytest.skip("provision.sim.apischema or ../shared/pve/apidoc.json is missing")

    class Call:
        class request:  # noqa: N801 - mimics responses' call.request
            method = "POST"
            url = f"{API}/nodes/pve1/qemu/100/config"
            body = "memroy=1"
            headers: dict[str, str] = {}

    problems = schema_violations([Call])
    assert problems and all("memroy" in p for p in problems)


def test_url_is_base_plus_api2_json(client):
    assert client.url == URL and client.base == API


@responses.activate
def test_a_redirect_is_not_followed_with_the_credentials():
    """Proxmox's API never redirects: a 3xx (from a hijacked or misconfigured front) is an
    error, and the other server never sees the token, the ticket or the password."""
    elsewhere = responses.get("https://elsewhere.test/steal", json={"data": 1})
    responses.get(
        f"{API}/version", status=302, headers={"Location": "https://elsewhere.test/steal"}
    )
    responses.post(
        f"{API}/access/ticket", status=307, headers={"Location": "https://elsewhere.test/steal"}
    )
    with pytest.raises(ApiError):
        make_client().get("/version")
    with pytest.raises(ApiError):
        make_client(password=("root@pam", "pw-never-sent")).get("/version")
    assert elsewhere.call_count == 0
    assert [c.request.url for c in responses.calls] == [f"{API}/version", f"{API}/access/ticket"]
