"""connect() to `api: sim`: the in-process simulator over real HTTPS, pinned, with its
credentials, and failures rehearsed through the inventory's own settings."""

from __future__ import annotations

import pytest

pytest.importorskip("provision.sim.server")

from pve_testing import schemas  # noqa: E402

from provision.errors import ApiError, AuthError  # noqa: E402
from provision.inventory.model import Inventory  # noqa: E402
from provision.pve.cluster import ClusterSnapshot, next_vmid  # noqa: E402
from provision.pve.connect import (  # noqa: E402
    connect,
    sim_server,
    sim_ssh_target,
)
from provision.pve.tasks import wait_task  # noqa: E402
from provision.sim.registry import stop_sim_servers  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_sim(tmp_path, monkeypatch):
    """A state dir of its own; the simulator connect() starts runs tasks in zero time
    (pvestatd's broadcast every 10 s, as in `api: sim`),
    answers a refused login after 0.1 s (not Proxmox's 3 s) and checks every request
    against the PVE 9.1 and 8.4 schemas; none is left running after the test."""
    import provision.sim.server as sim_module

    real = sim_module.SimServer

    def validator(method: str, path: str, params: dict) -> list[str]:
        return [v for schema in schemas() for v in schema.validate(method, path, params)]

    def fast(*args, **kwargs):
        kwargs.setdefault("durations", {"pvestatd": 10.0})
        kwargs.setdefault("auth_delay", 0.1)
        kwargs.setdefault("validator", validator)
        return real(*args, **kwargs)

    monkeypatch.setattr(sim_module, "SimServer", fast)
    monkeypatch.setenv("AIHOST_STATE_DIR", str(tmp_path / "state"))
    stop_sim_servers()
    yield
    stop_sim_servers()


def _inv(**host: object) -> Inventory:
    return Inventory.model_validate({"hosts": {"pve1": {"api": "sim", **host}}})


def test_sim_over_https_with_pin_and_admin_token(tmp_path):
    messages: list[str] = []
    inv = _inv()
    client = connect(inv, "pve1", progress=messages.append)
    server = sim_server(inv.hosts["pve1"])
    assert client.url == server.url and client.url.startswith("https://127.0.0.1:")
    assert client.pinned == server.fingerprint
    assert client.auth_id == server.token_id
    assert str(tmp_path / "state") in messages[0]
    snapshot = ClusterSnapshot.read(client)
    assert snapshot.vms, "the default fixture has VMs or templates"
    assert client.request_count() == 2  # /cluster/resources, /nodes/pve1/qemu
    assert connect(inv, "pve1").url == client.url  # one simulator per process and state dir
    assert server.violations() == []


def test_sim_clone_and_wait_task():
    inv = _inv()
    client = connect(inv, "pve1")
    snapshot = ClusterSnapshot.read(client)
    template = snapshot.templates()[0]
    newid = next_vmid(client)
    upid = client.post(
        f"/nodes/{template.node}/qemu/{template.vmid}/clone",
        newid=newid,
        name="api-test",
        full=1,
    )
    result = wait_task(client, upid, timeout=30, what="clone")
    assert result.exitstatus == "OK"
    assert client.request_count() == 5  # resources, node list, nextid, clone, one poll
    after = ClusterSnapshot.read(client)
    assert [vm.vmid for vm in after.by_name("api-test")] == [newid]
    server = sim_server(inv.hosts["pve1"])
    assert server.violations() == []


def test_sim_root_ticket_when_password_is_set():
    inv = _inv(password={"user": "root@pam", "secret_env": "AIHOST_SIM_PW_UNSET"})
    client = connect(inv, "pve1")
    assert client.is_root_ticket
    ClusterSnapshot.read(client)
    assert client.request_count() == 3  # login + the snapshot's two reads
    paths = [r.get("path", "") for r in sim_server(inv.hosts["pve1"]).request_log()]
    assert any("/access/ticket" in p for p in paths)


def test_sim_bad_token_is_refused(monkeypatch):
    monkeypatch.setenv("AIHOST_SIM_TOKEN", "00000000-0000-0000-0000-000000000000")
    inv = _inv(token={"id": "root@pam!aihost", "secret_env": "AIHOST_SIM_TOKEN"})
    client = connect(inv, "pve1")
    with pytest.raises(
        AuthError, match="authentication failure: the API token root@pam!aihost"
    ) as caught:  # noqa: E501
        client.get("/cluster/resources", type="vm")
    # pveproxy's bodiless 401 reason "Authentication failed!" adds nothing to the message
    assert "Authentication failed!" not in str(caught.value)


def test_sim_wrong_fingerprint_shows_the_real_one():
    inv = _inv(tls={"fingerprint": ":".join(["AB"] * 32)})
    client = connect(inv, "pve1")
    with pytest.raises(ApiError) as caught:
        client.get("/cluster/resources", type="vm")
    assert sim_server(inv.hosts["pve1"]).fingerprint in str(caught.value)


def test_sim_ssh_target_reaches_the_sftp_endpoint_with_host_key_checked():
    from provision.ssh.transport import SshSession

    inv = _inv()
    server = sim_server(inv.hosts["pve1"])
    target = sim_ssh_target(inv.hosts["pve1"])
    assert (target.host, target.port, target.user) == ("127.0.0.1", server.sftp_port, "root")
    assert target.known_hosts is not None
    assert target.known_hosts.read_text() == server.known_hosts_line("127.0.0.1") + "\n"
    with SshSession(target) as ssh:
        assert ssh.upload_if_changed("/var/lib/vz/snippets/api-test.yaml", b"#cloud-config\n")
        assert not ssh.upload_if_changed("/var/lib/vz/snippets/api-test.yaml", b"#cloud-config\n")
        assert ssh.read_file("/var/lib/vz/snippets/api-test.yaml") == b"#cloud-config\n"


def test_the_simulators_known_hosts_is_never_seen_half_written():
    """The VMs of a `vm up --all` name the simulator's SSH endpoint from their own threads
    while a reader (another VM's connection) loads the file: it must always hold a whole
    line, the old one or the new, never an empty file (a host key 'not known')."""
    import threading

    inv = _inv()
    server = sim_server(inv.hosts["pve1"])
    path = sim_ssh_target(inv.hosts["pve1"]).known_hosts
    assert path is not None
    new = server.known_hosts_line("127.0.0.1") + "\n"
    stale = "[127.0.0.1]:1 ssh-ed25519 AAAAstale\n"  # the endpoint of an earlier command
    seen: set[str] = set()

    def name_it(go: threading.Event) -> None:
        go.wait()
        sim_ssh_target(inv.hosts["pve1"])

    def read_it(go: threading.Event, done: threading.Event) -> None:
        go.wait()
        while not done.is_set():
            seen.add(path.read_text())

    for _round in range(40):
        path.write_text(stale)
        go, done = threading.Event(), threading.Event()
        namers = [threading.Thread(target=name_it, args=(go,)) for _ in range(6)]
        reader = threading.Thread(target=read_it, args=(go, done))
        for thread in [reader, *namers]:
            thread.start()
        go.set()
        for thread in namers:
            thread.join()
        done.set()
        reader.join()
        assert path.read_text() == new
    assert seen <= {stale, new}
