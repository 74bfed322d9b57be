"""`pvesm path` on the simulated node (pve-storage PVE/CLI/pvesm.pm `path` ->
PVE::Storage::path) and GET /storage/{storage} (PVE/API2/Storage/Config.pm `read`,
Datastore.Allocate), for storages other than `local`."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest
import yaml
from aihost_testing import token_client
from proxmoxer.core import ResourceException

from provision.sim.pvesm import run_pvesm
from provision.sim.server import SimServer

FIXTURES = Path(__file__).resolve().parents[2] / "provision" / "sim" / "fixtures"
STORAGES = {
    "local": {"type": "dir", "path": "/var/lib/vz", "content": "iso,snippets"},
    "cephfs": {"type": "cephfs", "path": "/mnt/pve/cephfs", "content": "snippets,iso"},
    "bare": {"type": "dir", "content": "snippets"},
    "local-lvm": {"type": "lvmthin", "content": "images"},
    "tank": {"type": "zfspool", "content": "images"},
}
USAGE = "pvesm path <volume>\n"


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        (["path", "local:snippets/u.yaml"], (0, "/var/lib/vz/snippets/u.yaml\n", "")),
        (["path", "cephfs:snippets/u.yaml"], (0, "/mnt/pve/cephfs/snippets/u.yaml\n", "")),
        (["path", "cephfs:iso/x.iso"], (0, "/mnt/pve/cephfs/template/iso/x.iso\n", "")),
        (
            ["path", "local:100/vm-100-disk-0.qcow2"],
            (0, "/var/lib/vz/images/100/vm-100-disk-0.qcow2\n", ""),
        ),
        (["path", "local-lvm:vm-100-disk-0"], (0, "/dev/pve/vm-100-disk-0\n", "")),
        (["path", "nas:snippets/u.yaml"], (255, "", "storage 'nas' does not exist\n")),
        (["path", "bare:snippets/u.yaml"], (255, "", "storage definition has no path\n")),
        (
            ["path", "local:snippets/a/b"],
            (255, "", "unable to parse directory volume name 'snippets/a/b'\n"),
        ),
        (
            ["path", "local:iso/x.txt"],
            (255, "", "unable to parse directory volume name 'iso/x.txt'\n"),
        ),
        (
            ["path", "local-lvm:snippets/u.yaml"],
            (255, "", "lvm name 'snippets/u.yaml' contains illegal characters\n"),
        ),
        (
            ["path", "tank:snippets/u.yaml"],
            (255, "", "unable to parse zfs volume name 'snippets/u.yaml'\n"),
        ),
        (
            ["path", "u.yaml"],
            (
                255,
                "",
                "400 Parameter verification failed.\nvolume: invalid "
                "format - unable to parse volume ID 'u.yaml'\n" + USAGE,
            ),
        ),
        (["path"], (255, "", "400 not enough arguments\n" + USAGE)),
        (["path", "a:b", "c"], (255, "", "400 too many arguments\n" + USAGE)),
        (
            ["frob"],
            (
                255,
                "",
                "ERROR: unknown command 'pvesm frob'\nUSAGE: pvesm <COMMAND> [ARGS] [OPTIONS]\n",
            ),
        ),
    ],
)
def test_pvesm_path_answers_as_pve_storage(args, answer):
    assert run_pvesm(STORAGES, args) == answer


@pytest.fixture
def cephfs_node(tmp_path):
    fixture = yaml.safe_load((FIXTURES / "default.yaml").read_text(encoding="utf-8"))
    fixture["storages"]["cephfs"] = {
        "type": "cephfs",
        "path": "/mnt/pve/cephfs",
        "content": ["snippets"],
        "shared": 1,
    }
    fixture["access"]["tokens"]["aihost@pve!noalloc"] = {
        "privsep": 1,
        "acl": [{"path": "/", "privs": {"all_but": ["Datastore.Allocate"]}}],
    }
    path = tmp_path / "fixture.yaml"
    path.write_text(yaml.safe_dump(fixture), encoding="utf-8")
    server = SimServer(tmp_path / "state", path, durations={}, auth_delay=0).start()
    try:
        yield server
    finally:
        server.stop()


def test_pvesm_over_the_nodes_ssh_and_the_file_lands_on_that_storage(cephfs_node, tmp_path):
    server = cephfs_node
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line() + "\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(known))
    client.connect(
        "127.0.0.1",
        port=server.sftp_port,
        username="root",
        key_filename=str(server.client_key_path),
        look_for_keys=False,
        allow_agent=False,
        timeout=5,
    )
    try:
        _in, out, err = client.exec_command("pvesm path cephfs:snippets/u.yaml", timeout=5)
        assert out.channel.recv_exit_status() == 0 and err.read() == b""
        path = out.read().decode().strip()
        assert path == "/mnt/pve/cephfs/snippets/u.yaml"
        with client.open_sftp() as sftp, sftp.open(path, "w") as handle:
            handle.write("#cloud-config\n")
        _in, out, err = client.exec_command("pvesm path nas:snippets/u.yaml", timeout=5)
        assert out.channel.recv_exit_status() == 255
        assert err.read() == b"storage 'nas' does not exist\n"
    finally:
        client.close()

    api = token_client(server)
    listed = api.nodes("pve1").storage("cephfs").content.get(content="snippets")
    assert [v["volid"] for v in listed] == ["cephfs:snippets/u.yaml"]


def test_reading_a_storage_config_needs_datastore_allocate(cephfs_node):
    from proxmoxer import ProxmoxAPI

    server = cephfs_node

    def api(token: str) -> ProxmoxAPI:
        return token_client(server, token)

    config = api(server.token_id).storage("cephfs").get()
    assert {k: v for k, v in config.items() if k != "digest"} == {
        "storage": "cephfs",
        "type": "cephfs",
        "path": "/mnt/pve/cephfs",
        "content": "snippets",
        "shared": 1,
    }
    assert len(config["digest"]) == 40
    assert api(server.token_id).storage("local-lvm").get()["digest"] == config["digest"]
    with pytest.raises(ResourceException) as caught:
        api("aihost@pve!noalloc").storage("cephfs").get()
    assert (caught.value.status_code, caught.value.content) == (
        403,
        "Permission check failed (/storage/cephfs, Datastore.Allocate)",
    )
    with pytest.raises(ResourceException) as caught:
        api(server.token_id).storage("nas").get()
    assert (caught.value.status_code, caught.value.content) == (500, "storage 'nas' does not exist")
