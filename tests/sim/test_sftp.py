"""The simulator's SSH endpoint with a real paramiko client: host key pinning, key auth,
SFTP confined to the mapped storage paths, exec of host facts, clean shutdown."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from provision.sim.sftp import SshEndpoint, generate_client_key

SNIPPETS = "/var/lib/vz/snippets"
FACTS = {
    "cat /proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz-6.8.12-4-pve root=/dev/mapper/pve-root ro "
    "quiet intel_iommu=on iommu=pt\n",
    "readlink /sys/bus/pci/devices/0000:01:00.0/driver": "../../../../bus/pci/drivers/vfio-pci\n",
    "lsmod": "Module                  Size  Used by\nvfio_pci               16384  0\n",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("ssh")
    local = base / "storage" / "local"
    (local / "snippets").mkdir(parents=True)
    (local / "snippets" / "existing.yaml").write_text("#cloud-config\n")
    client_key = base / "client_ed25519"
    public = generate_client_key(client_key)
    endpoint = SshEndpoint(
        host_key_path=base / "ssh_host_ed25519_key",
        authorized_keys=[public],
        path_map={"/var/lib/vz": local},
        host_facts=FACTS,
    ).start()
    known = base / "known_hosts"
    known.write_text(endpoint.known_hosts_line() + "\n")
    yield {"endpoint": endpoint, "local": local, "key": client_key, "known": known, "base": base}
    endpoint.stop()


def connect(
    world: dict[str, object], *, known: Path | None = None, key: Path | None = None
) -> paramiko.SSHClient:
    endpoint = world["endpoint"]
    assert isinstance(endpoint, SshEndpoint)
    client = paramiko.SSHClient()
    client.load_host_keys(str(known or world["known"]))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port=endpoint.port,
        username="root",
        key_filename=str(key or world["key"]),
        look_for_keys=False,
        allow_agent=False,
        timeout=5,
        banner_timeout=5,
        auth_timeout=5,
    )
    return client


def test_atomic_upload_listdir_and_hash(world: dict[str, object]) -> None:
    local = world["local"]
    assert isinstance(local, Path)
    client = connect(world)
    try:
        sftp = client.open_sftp()
        content = b"#cloud-config\npackages: [qemu-guest-agent]\n"
        with sftp.open(f"{SNIPPETS}/.box-user.yaml.tmp", "wb") as handle:
            handle.write(content)
        sftp.chmod(f"{SNIPPETS}/.box-user.yaml.tmp", 0o644)
        sftp.posix_rename(f"{SNIPPETS}/.box-user.yaml.tmp", f"{SNIPPETS}/box-user.yaml")
        assert (local / "snippets" / "box-user.yaml").read_bytes() == content
        assert sorted(sftp.listdir(SNIPPETS)) == ["box-user.yaml", "existing.yaml"]
        assert sftp.stat(f"{SNIPPETS}/box-user.yaml").st_size == len(content)
        with sftp.open(f"{SNIPPETS}/box-user.yaml", "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == hashlib.sha256(content).hexdigest()
        # posix-rename replaces an existing file; plain SFTP rename refuses to
        sftp.putfo(io.BytesIO(b"v2"), f"{SNIPPETS}/.tmp2")
        with pytest.raises(OSError):
            sftp.rename(f"{SNIPPETS}/.tmp2", f"{SNIPPETS}/box-user.yaml")
        sftp.posix_rename(f"{SNIPPETS}/.tmp2", f"{SNIPPETS}/box-user.yaml")
        assert (local / "snippets" / "box-user.yaml").read_bytes() == b"v2"
        sftp.rename(f"{SNIPPETS}/box-user.yaml", f"{SNIPPETS}/moved.yaml")
        sftp.remove(f"{SNIPPETS}/moved.yaml")
        with pytest.raises(FileNotFoundError):
            sftp.stat(f"{SNIPPETS}/moved.yaml")
        sftp.mkdir("/var/lib/vz/template")
        with pytest.raises(OSError):
            sftp.mkdir("/var/lib")
        assert stat.S_ISDIR(sftp.stat("/var/lib/vz/template").st_mode or 0)
        assert stat.S_ISDIR(sftp.stat("/var/lib").st_mode or 0)
        assert sftp.listdir("/var/lib") == ["vz"]
    finally:
        client.close()


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        f"{SNIPPETS}/../../../../etc/passwd",
        "/var/lib/vzz/x",
        "relative.txt",
        f"{SNIPPETS}/escape/x",
    ],
)
def test_paths_outside_the_storage_are_refused(world: dict[str, object], path: str) -> None:
    local = world["local"]
    assert isinstance(local, Path)
    link = local / "snippets" / "escape"
    if not link.exists():
        link.symlink_to("/etc")
    client = connect(world)
    try:
        sftp = client.open_sftp()
        with pytest.raises(PermissionError):
            sftp.open(path, "wb")
        with pytest.raises(PermissionError):
            sftp.stat(path)
    finally:
        client.close()
    assert not Path("/etc/x").exists()


def test_unknown_host_key_is_refused(world: dict[str, object], tmp_path: Path) -> None:
    other = SshEndpoint(host_key_path=tmp_path / "other_key", authorized_keys=[], path_map={})
    endpoint = world["endpoint"]
    assert isinstance(endpoint, SshEndpoint)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{endpoint.port} {other.host_key_line}\n")
    with pytest.raises(paramiko.BadHostKeyException):
        connect(world, known=known)


def test_unauthorized_client_key_is_refused(world: dict[str, object], tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    generate_client_key(stranger)
    with pytest.raises(paramiko.AuthenticationException):
        connect(world, key=stranger)


def run(client: paramiko.SSHClient, command: str) -> tuple[int, str, str]:
    _stdin, stdout, stderr = client.exec_command(command, timeout=5)
    code = stdout.channel.recv_exit_status()
    return code, stdout.read().decode(), stderr.read().decode()


def test_exec_host_facts(world: dict[str, object]) -> None:
    client = connect(world)
    try:
        assert run(client, "cat /proc/cmdline") == (0, FACTS["cat /proc/cmdline"], "")
        assert run(client, "readlink  /sys/bus/pci/devices/0000:01:00.0/driver")[1].endswith(
            "vfio-pci\n"
        )
        assert run(client, "readlink /sys/bus/pci/devices/0000:09:00.0/driver") == (1, "", "")
        assert run(client, "lsmod")[1].startswith("Module")
        code, out, _ = run(client, f"sha256sum {SNIPPETS}/existing.yaml")
        expected = hashlib.sha256(b"#cloud-config\n").hexdigest()
        assert (code, out) == (0, f"{expected}  {SNIPPETS}/existing.yaml\n")
        assert run(client, "cat /etc/shadow") == (
            1,
            "",
            "cat: /etc/shadow: No such file or directory\n",
        )
        assert run(client, "rm -rf /") == (127, "", "bash: rm: command not found\n")
    finally:
        client.close()


def test_keys_are_kept_and_private(tmp_path: Path) -> None:
    key_path = tmp_path / "host_key"
    first = SshEndpoint(host_key_path=key_path, authorized_keys=[], path_map={})
    second = SshEndpoint(host_key_path=key_path, authorized_keys=[], path_map={})
    assert first.host_key_line == second.host_key_line
    assert first.host_key_line.startswith("ssh-ed25519 ")
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    line = generate_client_key(tmp_path / "client")
    assert generate_client_key(tmp_path / "client") == line
    assert (tmp_path / "client.pub").read_text() == line + "\n"


def test_stop_closes_connections_and_threads(tmp_path: Path) -> None:
    key = tmp_path / "client"
    endpoint = SshEndpoint(
        host_key_path=tmp_path / "hk",
        authorized_keys=[generate_client_key(key)],
        path_map={"/var/lib/vz": tmp_path},
    ).start()
    known = tmp_path / "known"
    known.write_text(endpoint.known_hosts_line() + "\n")
    client = connect({"endpoint": endpoint, "key": key, "known": known})
    sftp = client.open_sftp()
    assert sftp.listdir("/var/lib/vz") == sorted(os.listdir(tmp_path))
    port = endpoint.port
    client.exec_command("true")  # leaves an exec worker waiting for the client's close
    endpoint.stop()
    assert not [t.name for t in threading.enumerate() if t.name.endswith(f"-{port}")]
    with pytest.raises((OSError, EOFError, paramiko.SSHException)):
        sftp.listdir("/var/lib/vz")
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    client.close()


def test_the_accept_loop_accepts_only_waiting_connections_and_leaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the loop waits on the socket and is woken by stop(): no accept() that times out
    # (a poll interval every stop waited out), and no descriptor left open after stop
    key = tmp_path / "client"
    public = generate_client_key(key)
    endpoint = SshEndpoint(host_key_path=tmp_path / "hk", authorized_keys=[public], path_map={})
    accepts = []
    real_accept = socket.socket.accept

    def counted(sock: socket.socket) -> tuple[socket.socket, object]:
        if sock is endpoint._sock:
            accepts.append(sock)
        return real_accept(sock)

    monkeypatch.setattr(socket.socket, "accept", counted)
    endpoint.start()
    known = tmp_path / "known"
    known.write_text(endpoint.known_hosts_line() + "\n")
    connect({"endpoint": endpoint, "key": key, "known": known}).close()
    port = endpoint.port
    wakeup = getattr(endpoint, "_wakeup", None)
    opened = [endpoint._sock, *((wakeup._reader, wakeup._writer) if wakeup else ())]
    endpoint.stop()
    assert len(accepts) == 1
    assert not [t.name for t in threading.enumerate() if t.name.endswith(f"-{port}")]
    assert [s.fileno() for s in opened if s is not None] == [-1] * len(opened)


def test_the_servers_connections_send_small_packets_at_once(world: dict[str, object]) -> None:
    # an exec's reply could wait ~40 ms behind the command's output (Nagle + the
    # client's delayed ACK), an artefact of this server's worker threads
    endpoint = world["endpoint"]
    assert isinstance(endpoint, SshEndpoint)
    client = connect(world)
    try:
        (transport,) = [t for t in endpoint._transports if t.is_active()][-1:]
        sock = transport.sock
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        client.close()
