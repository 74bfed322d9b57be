"""The SSH transport against a real OpenSSH server on 127.0.0.1 (tests/support/sshd.py):
atomic upload skipped by hash, host key checking (unknown, hashed, changed), key and agent
login, clear errors, and commands."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.sshd import Sshd, free_port, running_sshd, write_private_key

from provision.errors import EXIT_API, SSHError, WaitTimeout
from provision.ssh.transport import SshSession, SshTarget


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own ssh-agent must not log these tests in."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def target(server: Sshd, **changes: object) -> SshTarget:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "user": "root",
        "key_path": server.client_key,
        "known_hosts": server.known_hosts,
    }
    values.update(changes)
    return SshTarget(**values)  # type: ignore[arg-type]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".aihost-" in p.name)


def keygen_fingerprint(public_key_file: Path) -> str:
    """The fingerprint ssh-keygen prints for a public key file."""
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.skip("ssh-keygen is not installed")
    out = subprocess.run(
        [keygen, "-l", "-E", "sha256", "-f", str(public_key_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()[1]


def test_upload_writes_a_new_file_privately_without_leftovers(sshd: Sshd, tmp_path: Path):
    path = tmp_path / "snippets" / "llm-box-user.yaml"
    path.parent.mkdir()
    with SshSession(target(sshd)) as ssh:
        assert ssh.upload_if_changed(str(path), b"#cloud-config\nhostname: llm-box\n") is True
    assert path.read_bytes() == b"#cloud-config\nhostname: llm-box\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert leftovers(path.parent) == []


def test_same_content_is_skipped_and_the_file_untouched(sshd: Sshd, tmp_path: Path):
    path = tmp_path / "user.yaml"
    content = b"#cloud-config\n" + os.urandom(100_000).hex().encode()
    with SshSession(target(sshd)) as ssh:
        assert ssh.upload_if_changed(str(path), content) is True
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
        before = path.stat()
        assert ssh.upload_if_changed(str(path), content) is False
    after = path.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert path.read_bytes() == content


def test_same_size_different_bytes_is_rewritten(sshd: Sshd, tmp_path: Path):
    path = tmp_path / "user.yaml"
    path.write_bytes(b"password: aaaa\n")
    with SshSession(target(sshd)) as ssh:
        assert ssh.upload_if_changed(str(path), b"password: bbbb\n") is True
    assert path.read_bytes() == b"password: bbbb\n"


def test_changed_content_replaces_the_file_by_rename(sshd: Sshd, tmp_path: Path):
    path = tmp_path / "user.yaml"
    path.write_bytes(b"old\n")
    old_inode = path.stat().st_ino
    with SshSession(target(sshd)) as ssh:
        assert ssh.upload_if_changed(str(path), b"new content\n") is True
        assert ssh.read_file(str(path)) == b"new content\n"
    assert path.read_bytes() == b"new content\n"
    assert path.stat().st_ino != old_inode  # a new file renamed over the old one
    assert leftovers(tmp_path) == []


def test_missing_directory_is_created_only_under_an_existing_parent(sshd: Sshd, tmp_path: Path):
    with SshSession(target(sshd)) as ssh:
        assert ssh.upload_if_changed(str(tmp_path / "snippets" / "a.yaml"), b"a") is True
        with pytest.raises(SSHError) as err:
            ssh.upload_if_changed(str(tmp_path / "no" / "such" / "a.yaml"), b"a")
    assert (tmp_path / "snippets" / "a.yaml").read_bytes() == b"a"
    assert "neither it nor" in err.value.message and str(tmp_path / "no") in err.value.message
    assert not (tmp_path / "no").exists()


def test_read_and_remove(sshd: Sshd, tmp_path: Path):
    path = tmp_path / "meta.yaml"
    path.write_bytes(b"instance-id: x\n")
    with SshSession(target(sshd)) as ssh:
        assert ssh.read_file(str(path)) == b"instance-id: x\n"
        assert ssh.read_file(str(tmp_path / "absent")) is None
        assert ssh.remove(str(path)) is True
        assert ssh.remove(str(path)) is False
    assert not path.exists()


def test_a_directory_in_the_way_is_a_clear_error(sshd: Sshd, tmp_path: Path):
    (tmp_path / "user.yaml").mkdir()
    with SshSession(target(sshd)) as ssh, pytest.raises(SSHError) as err:
        ssh.upload_if_changed(str(tmp_path / "user.yaml"), b"x")
    assert "is a directory" in err.value.message and f"127.0.0.1:{sshd.port}" in err.value.message


def test_unknown_host_key_is_refused_with_its_fingerprint(sshd: Sshd, tmp_path: Path):
    known = tmp_path / "known_hosts"
    known.write_text("# nothing yet\n")
    path = tmp_path / "user.yaml"
    with pytest.raises(SSHError) as err, SshSession(target(sshd, known_hosts=known)) as ssh:
        ssh.upload_if_changed(str(path), b"secret: 1\n")
    assert err.value.exit_code == EXIT_API
    text = str(err.value)
    expected = keygen_fingerprint(sshd.host_key.with_name(sshd.host_key.name + ".pub"))
    assert f"ssh-ed25519 {expected}" in text
    assert f"root@127.0.0.1:{sshd.port}" in text
    assert f"ssh-keyscan -t ssh-ed25519 -p {sshd.port} 127.0.0.1 >> {known}" in text
    assert not path.exists()


def test_the_accept_command_from_the_message_works(sshd: Sshd, tmp_path: Path):
    if shutil.which("ssh-keyscan") is None:
        pytest.skip("ssh-keyscan is not installed")
    known = tmp_path / "known_hosts"
    with pytest.raises(SSHError) as err:
        SshSession(target(sshd, known_hosts=known)).open()
    command = err.value.hint.split("accept it: ", 1)[1]  # type: ignore[union-attr]
    argv, redirect = command.split(" >> ")
    assert Path(redirect) == known
    scanned = subprocess.run(shlex.split(argv), capture_output=True, text=True, timeout=20)
    known.write_text(scanned.stdout)
    with SshSession(target(sshd, known_hosts=known)) as ssh:
        assert ssh.run("echo ok").stdout == "ok\n"


def test_hashed_known_hosts_entries_are_matched(sshd: Sshd, tmp_path: Path):
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.skip("ssh-keygen is not installed")
    known = tmp_path / "known_hosts"
    known.write_text(
        "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\n" + sshd.known_hosts_line() + "\n"
    )
    subprocess.run([keygen, "-H", "-f", str(known)], check=True, capture_output=True)
    assert "127.0.0.1" not in known.read_text()
    with SshSession(target(sshd, known_hosts=known)) as ssh:
        assert ssh.run("true").exit_status == 0


def test_changed_host_key_is_refused_loudly(sshd: Sshd, tmp_path: Path):
    impostor = tmp_path / "impostor"
    public = write_private_key(impostor).split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {public[0]} {public[1]}\n")
    path = tmp_path / "user.yaml"
    with pytest.raises(SSHError) as err, SshSession(target(sshd, known_hosts=known)) as ssh:
        ssh.upload_if_changed(str(path), b"x")
    assert "host key for 127.0.0.1 has CHANGED" in err.value.message
    assert keygen_fingerprint(impostor.with_name("impostor.pub")) in err.value.message
    assert "ssh-keygen -R" in str(err.value.hint)
    assert not path.exists()


def test_server_with_another_key_type_is_checked_by_that_type(tmp_path: Path):
    with running_sshd(tmp_path / "ecdsa", host_key_kind="ecdsa") as server:
        with SshSession(target(server)) as ssh:
            assert ssh.run("true").ok
        known = tmp_path / "known_hosts"
        other = write_private_key(tmp_path / "other").split()
        known.write_text(f"[127.0.0.1]:{server.port} {other[0]} {other[1]}\n")
        with pytest.raises(SSHError) as err:
            SshSession(target(server, known_hosts=known)).open()
    assert "is not known: ecdsa-sha2-nistp256 SHA256:" in err.value.message
    assert "has only ssh-ed25519" in err.value.message


def test_wrong_client_key_is_a_clear_error(sshd: Sshd, tmp_path: Path):
    wrong = tmp_path / "id_wrong"
    write_private_key(wrong)
    with pytest.raises(SSHError) as err:
        SshSession(target(sshd, key_path=wrong)).open()
    assert err.value.exit_code == EXIT_API
    assert f"authentication failed for root@127.0.0.1:{sshd.port}" in err.value.message
    assert str(wrong) in err.value.message


def test_passphrase_key_without_agent_says_how_to_use_it(sshd: Sshd, tmp_path: Path):
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.skip("ssh-keygen is not installed")
    locked = tmp_path / "id_locked"
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "hunter22", "-f", str(locked)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(SSHError) as err:
        SshSession(target(sshd, key_path=locked)).open()
    assert f"ssh-add {locked}" in str(err.value.hint)
    assert "hunter22" not in str(err.value)


def test_login_through_ssh_agent(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    agent_bin, add_bin = shutil.which("ssh-agent"), shutil.which("ssh-add")
    if agent_bin is None or add_bin is None:
        pytest.skip("ssh-agent is not installed")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen([agent_bin, "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run([add_bin, str(sshd.client_key)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* to fall back on
        with SshSession(target(sshd, key_path=None)) as ssh:
            assert ssh.run("echo via-agent").stdout == "via-agent\n"
    finally:
        agent.terminate()
        agent.wait(timeout=5)


def test_connection_refused_names_the_target(tmp_path: Path):
    port = free_port()
    session = SshSession(
        SshTarget("127.0.0.1", port, "root", None, tmp_path / "known_hosts"), connect_timeout=2
    )
    with pytest.raises(SSHError) as err:
        session.open()
    assert err.value.exit_code == EXIT_API
    assert f"connection refused by root@127.0.0.1:{port}" in err.value.message


def test_run_returns_status_and_both_outputs(sshd: Sshd):
    with SshSession(target(sshd)) as ssh:
        result = ssh.run("echo out; echo err >&2; exit 7")
        assert (result.exit_status, result.stdout, result.stderr) == (7, "out\n", "err\n")
        assert not result.ok
        big = ssh.run("head -c 300000 /dev/zero | tr '\\0' x; head -c 200000 /dev/zero >&2")
        assert (len(big.stdout), len(big.stderr)) == (300_000, 200_000)
        assert ssh.run("cat /proc/cmdline").ok


def test_run_that_outlasts_its_timeout_raises(sshd: Sshd):
    started = time.monotonic()
    with SshSession(target(sshd)) as ssh, pytest.raises(WaitTimeout) as err:
        ssh.run("sleep 20", timeout=0.3)
    assert time.monotonic() - started < 5
    assert "did not finish within 0.3s" in err.value.message


def test_the_simulators_ssh_endpoint_takes_the_same_uploads(tmp_path: Path):
    sim_sftp = pytest.importorskip("provision.sim.sftp")
    local = tmp_path / "storage" / "local"
    (local / "snippets").mkdir(parents=True)
    client_key = tmp_path / "client_ed25519"
    endpoint = sim_sftp.SshEndpoint(
        host_key_path=tmp_path / "ssh_host_ed25519_key",
        authorized_keys=[sim_sftp.generate_client_key(client_key)],
        path_map={"/var/lib/vz": local},
        host_facts={"cat /proc/cmdline": "quiet intel_iommu=on\n"},
    )
    known = tmp_path / "known_hosts"
    with endpoint:
        known.write_text(endpoint.known_hosts_line() + "\n")
        sim_target = SshTarget("127.0.0.1", endpoint.port, "root", client_key, known)
        remote = "/var/lib/vz/snippets/llm-box-user.yaml"
        with SshSession(sim_target) as ssh:
            assert ssh.upload_if_changed(remote, b"#cloud-config\n") is True
            assert ssh.upload_if_changed(remote, b"#cloud-config\n") is False
            assert ssh.upload_if_changed(remote, b"#cloud-config\nhostname: a\n") is True
            assert ssh.read_file(remote) == b"#cloud-config\nhostname: a\n"
            assert ssh.run("cat /proc/cmdline").stdout == "quiet intel_iommu=on\n"
        assert (local / "snippets" / "llm-box-user.yaml").read_bytes().endswith(b"hostname: a\n")
        assert leftovers(local / "snippets") == []
        known.write_text("")
        with pytest.raises(SSHError, match="is not known: ssh-ed25519 SHA256:"):
            SshSession(sim_target).open()


def test_the_connection_sends_small_packets_at_once(sshd: Sshd) -> None:
    # paramiko writes several small packets in a row during the handshake; with Nagle's
    # algorithm each later one waited for the server's delayed ACK (~40 ms a connection)
    import socket

    sock = SshSession(target(sshd))._socket()
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
