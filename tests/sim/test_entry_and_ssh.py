"""The foreground entry point, snippets delivered over the SFTP endpoint, reboot applying
pending changes, ticket expiry."""

from __future__ import annotations

import threading

import paramiko
import pytest
from aihost_testing import token_client
from proxmoxer.core import ResourceException

from provision.sim.cli_entry import resolve_fixture, serve
from provision.sim.server import SimServer


def test_serve_prints_how_to_connect_and_stops(tmp_path):
    lines: list[str] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=serve,
        kwargs={
            "port": 0,
            "fixture": resolve_fixture("two-node"),
            "state_dir": tmp_path,
            "sftp_port": None,
            "echo": lines.append,
            "stop": stop,
        },
    )
    worker.start()
    try:
        for _ in range(200):
            if len(lines) >= 5:
                break
            threading.Event().wait(0.01)
        assert lines[0].startswith("Proxmox VE simulator on https://127.0.0.1:")
        assert "TLS fingerprint (SHA-256): " in lines[1]
        assert "API token: root@pam!aihost  secret: " in lines[3]
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    with pytest.raises(SystemExit, match="neither a file nor a shipped fixture"):
        resolve_fixture("no-such-fixture")


def test_snippet_uploaded_over_sftp_lets_the_vm_start(tmp_path):
    server = SimServer(tmp_path, durations={}, auth_delay=0).start()
    try:
        (tmp_path / "known_hosts").write_text(server.known_hosts_line() + "\n")
        client = paramiko.SSHClient()
        client.load_host_keys(str(tmp_path / "known_hosts"))
        client.connect(
            "127.0.0.1",
            port=server.sftp_port,
            username="root",
            key_filename=str(server.client_key_path),
            look_for_keys=False,
            allow_agent=False,
        )
        with client.open_sftp() as sftp, sftp.open("/var/lib/vz/snippets/u.yaml", "w") as f:
            f.write("#cloud-config\npackages: [qemu-guest-agent]\n")
        client.close()
        api = token_client(server)
        api.nodes("pve1").qemu(9000).clone.post(newid=100, name="s", full=1)
        vm = api.nodes("pve1").qemu(100)
        vm.config.put(cicustom="user=local:snippets/u.yaml")
        upid = vm.status.start.post()
        assert api.nodes("pve1").tasks(upid).status.get()["exitstatus"] == "OK"
        assert vm.agent.ping.post() == {"result": {}}
    finally:
        server.stop()


def test_reboot_applies_pending_changes(sim):
    api = sim.api()
    sim.wait(api, api.nodes("pve1").qemu(9000).clone.post(newid=100, name="r", full=1))
    vm = api.nodes("pve1").qemu(100)
    sim.wait(api, vm.status.start.post())
    vm.config.put(memory="4096")
    assert vm.config.get(current=1)["memory"] == "2048"
    assert sim.wait(api, vm.status.reboot.post())["exitstatus"] == "OK"
    assert vm.config.get(current=1)["memory"] == "4096"
    assert vm.status.current.get()["status"] == "running"


def test_ticket_expires_after_two_hours(clocked):
    sim, clock = clocked
    root = sim.root()
    assert root.version.get()["release"] == "9.1"
    clock.advance(7201)
    with pytest.raises(ResourceException) as caught:
        root.version.get()
    assert caught.value.status_code == 401


def test_a_valid_ticket_renews_itself_as_proxmoxer_does(clocked):
    sim, clock = clocked
    root = sim.root()
    clock.advance(3700)
    root._store["session"].auth._get_new_tokens()  # proxmoxer's renewal: ticket as password
    clock.advance(3700)
    assert root.version.get()["release"] == "9.1"  # the renewed ticket is still valid
