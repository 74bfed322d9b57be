"""SshTarget from inventory hosts, and session errors that need no server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from provision.errors import InputError, SSHError
from provision.inventory.model import Host
from provision.ssh.transport import CommandResult, SshSession, SshTarget

TOKEN = {"id": "aihost@pve!prov", "secret_env": "PVE_TOKEN"}


def host(**fields: object) -> Host:
    return Host.model_validate({"api": "https://pve.lan:8006", "token": TOKEN, **fields})


def test_without_ssh_settings_the_api_hostname_and_defaults_are_used():
    target = SshTarget.from_host(host())
    assert (target.host, target.port, target.user) == ("pve.lan", 22, "root")
    assert target.key_path is None and target.known_hosts is None
    assert target.known_hosts_path == Path.home() / ".ssh" / "known_hosts"
    assert target.where == "root@pve.lan:22"


def test_ssh_settings_override_and_paths_expand_home():
    target = SshTarget.from_host(
        host(
            ssh={
                "user": "aihost",
                "host": "10.0.0.5",
                "port": 2222,
                "key": "~/.ssh/id_pve",
                "known_hosts": "~/pve_known_hosts",
            }
        )
    )
    assert (target.host, target.port, target.user) == ("10.0.0.5", 2222, "aihost")
    assert target.key_path == Path.home() / ".ssh" / "id_pve"
    assert target.known_hosts_path == Path.home() / "pve_known_hosts"


def test_ssh_settings_without_host_keep_the_api_hostname():
    assert SshTarget.from_host(host(ssh={"port": 2200})).where == "root@pve.lan:2200"


def test_sim_host_needs_an_explicit_ssh_host():
    with pytest.raises(InputError, match="no SSH host"):
        SshTarget.from_host(Host.model_validate({"api": "sim"}))


def test_ipv6_hosts_are_bracketed_in_messages():
    assert SshTarget("fd00::5", 22).where == "root@[fd00::5]:22"


def test_command_result_ok():
    assert CommandResult(0, "", "").ok and not CommandResult(1, "", "").ok


def test_unresolvable_host_names_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def no_dns(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", no_dns)
    target = SshTarget("no-such-node.invalid", 22, "root", None, tmp_path / "known_hosts")
    with pytest.raises(SSHError) as err:
        SshSession(target, connect_timeout=5).open()
    assert "cannot resolve no-such-node.invalid" in err.value.message
    assert "root@no-such-node.invalid:22" in err.value.message


def test_timeout_names_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def slow(*args: object, **kwargs: object) -> None:
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", slow)
    target = SshTarget("10.0.0.5", 2222, "root", None, tmp_path / "known_hosts")
    with pytest.raises(SSHError) as err:
        SshSession(target, connect_timeout=1.5).open()
    assert err.value.message == "timed out after 1.5s connecting to root@10.0.0.5:2222"


def test_missing_key_file_is_an_input_error(tmp_path: Path):
    from provision.ssh.auth import _candidates

    target = SshTarget("pve.lan", 22, "root", tmp_path / "absent", None)
    with pytest.raises(InputError, match="does not exist"):
        list(_candidates(target, [], []))
