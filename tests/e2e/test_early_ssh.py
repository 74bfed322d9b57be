"""`vm up` of one VM begins its snippet check's SSH work (connect, host key, login,
`pvesm path`, reads) in the background as the command starts, so it overlaps the API
reads before it (provision/delivery/plan.py start_snippet_read); its failures still read
exactly as when that work ran in its turn, and still stop the run before any write."""

from __future__ import annotations

import threading

import pytest
from aihost_testing import run_aihost
from support.sshd import free_port

import provision.pve.session as pve_session
import provision.vmops.fleet as fleet
from provision.errors import EXIT_API
from provision.ssh.transport import SshSession

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}


def _up(inventory, *args: str):
    return run_aihost("-i", str(inventory), "vm", "up", "llm-box", *args)


def test_the_ssh_connection_is_made_while_the_api_is_still_being_read(sim, tmp_path, monkeypatch):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    assert _up(inventory, "--no-wait").exit_code == 0
    opened = threading.Event()
    openers: list[bool] = []
    real_connect = SshSession._connect

    def connect(self: SshSession):  # type: ignore[no-untyped-def]
        openers.append(threading.current_thread() is threading.main_thread())
        opened.set()
        return real_connect(self)

    real_node_vms = pve_session.node_vms
    connecting: list[bool] = []

    def node_vms(client, node):  # type: ignore[no-untyped-def]
        # the node's VM list is the re-run's second API read; the snippet check's SSH
        # work comes after its config read: begun early, it is under way by now
        connecting.append(opened.wait(5))
        return real_node_vms(client, node)

    monkeypatch.setattr(SshSession, "_connect", connect)
    monkeypatch.setattr(pve_session, "node_vms", node_vms)
    before = len(sim.requests())
    again = _up(inventory)
    assert again.exit_code == 0, again.stderr
    assert "no changes" in again.stdout
    assert connecting == [True]
    assert openers == [False]  # one connection, made by a background thread
    assert [r for r in sim.requests(before) if r["method"] != "GET"] == []


def _unknown_host_key(sim, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("# nothing yet\n")
    ssh = {**_ssh(sim), "known_hosts": str(known)}
    return sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host={"ssh": ssh})


def _refused(sim, tmp_path):
    ssh = {**_ssh(sim), "port": free_port()}
    return sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host={"ssh": ssh})


def _ssh(sim) -> dict:
    server = sim.server
    return {
        "user": "root",
        "host": "127.0.0.1",
        "port": server.sftp_port,
        "key": str(server.client_key_path),
        "known_hosts": str(sim.known_hosts),
    }


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_unknown_host_key, "is not known: ssh-ed25519 SHA256:"),
        (_refused, "connection refused by root@127.0.0.1:"),
    ],
)
def test_a_failing_background_connection_fails_the_run_as_before_and_writes_nothing(
    sim, tmp_path, monkeypatch, make, expected
):
    inventory = make(sim, tmp_path)
    before = len(sim.requests())
    early = _up(inventory, "--no-wait")
    early_log = [(r["method"], r["path"]) for r in sim.requests(before)]
    monkeypatch.setattr(fleet, "start_snippet_read", lambda session, name: None)
    before = len(sim.requests())
    in_turn = _up(inventory, "--no-wait")
    in_turn_log = [(r["method"], r["path"]) for r in sim.requests(before)]
    assert early.exit_code == in_turn.exit_code == EXIT_API
    assert expected in early.stderr
    assert early.stderr.count("aihost: error:") == 1
    assert (early.stdout, early.stderr) == (in_turn.stdout, in_turn.stderr)
    assert early_log == in_turn_log  # the same reads, and no write
    assert all(method == "GET" for method, _ in early_log)
