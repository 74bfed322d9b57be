"""Where a snippet lives on the node comes from `pvesm path STORAGE:snippets/NAME` over the
SSH connection aihost already uses (provision/delivery/snippets.py `snippet_path`), not
from GET /storage/{id} (which needs Datastore.Allocate).

Against a real OpenSSH server (tests/support/sshd.py) with a stand-in `pvesm` on its PATH
only: the stand-in answers with the simulator's model of pve-storage
(provision/sim/pvesm.py) for storages of this test, so the command line, quoting, exit
status and stderr go through a real sshd and a real shell.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.sshd import Sshd, running_sshd
from test_ssh_transport import target

from provision.delivery.snippets import snippet_path, snippet_paths
from provision.errors import InputError
from provision.ssh.transport import SshSession

REPO = Path(__file__).resolve().parents[2]
STORAGES = {
    "local": {"type": "dir", "path": "/var/lib/vz", "content": "iso,snippets"},
    "nas": {"type": "nfs", "path": "/mnt/pve/nas", "content": "snippets"},
    "local-lvm": {"type": "lvmthin", "content": "images"},
}
FAKE_PVESM = """#!{python}
import json, sys
sys.path.insert(0, {repo!r})
from provision.sim.pvesm import run_pvesm
code, out, err = run_pvesm(json.load(open({storages!r})), sys.argv[1:])
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    base = tmp_path_factory.mktemp("pvesm-node")
    bin_dir = base / "bin"
    bin_dir.mkdir()
    storages = base / "storage.json"
    storages.write_text(json.dumps(STORAGES))
    fake = bin_dir / "pvesm"
    fake.write_text(
        FAKE_PVESM.format(python=sys.executable, repo=str(REPO), storages=str(storages))
    )
    fake.chmod(0o755)
    with running_sshd(base / "sshd", extra_config=f"SetEnv PATH={bin_dir}:/usr/bin:/bin\n") as sshd:
        yield sshd


@pytest.fixture(autouse=True)
def _no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


@pytest.mark.parametrize(
    ("volid", "path"),
    [
        ("local:snippets/aihost-box-user.yaml", "/var/lib/vz/snippets/aihost-box-user.yaml"),
        ("nas:snippets/aihost-box-meta.yaml", "/mnt/pve/nas/snippets/aihost-box-meta.yaml"),
    ],
)
def test_the_path_is_what_pvesm_prints(node: Sshd, volid: str, path: str) -> None:
    with SshSession(target(node)) as ssh:
        assert snippet_path(ssh, volid) == path


def test_an_unknown_storage_is_pvesms_own_error(node: Sshd) -> None:
    with SshSession(target(node)) as ssh, pytest.raises(InputError) as caught:
        snippet_path(ssh, "cephfs:snippets/x.yaml")
    assert caught.value.message == (
        "cannot find where cephfs:snippets/x.yaml lives on the node: `pvesm path` says: "
        "storage 'cephfs' does not exist"
    )
    assert "pvesm status --content snippets" in (caught.value.hint or "")


def test_a_block_storage_has_no_snippet_path(node: Sshd) -> None:
    with SshSession(target(node)) as ssh, pytest.raises(InputError) as caught:
        snippet_path(ssh, "local-lvm:snippets/x.yaml")
    assert "lvm name 'snippets/x.yaml' contains illegal characters" in caught.value.message


def test_the_volume_id_reaches_pvesm_as_one_literal_argument(node: Sshd) -> None:
    volid = "local:snippets/a b$(touch PWNED)'c"
    with SshSession(target(node)) as ssh:
        assert snippet_path(ssh, volid) == "/var/lib/vz/snippets/a b$(touch PWNED)'c"
        assert ssh.run("ls PWNED").exit_status != 0  # nothing ran in root's home


def test_a_vms_snippets_cost_one_pvesm_call(node: Sshd) -> None:
    # each `pvesm path` starts Perl on a real node (~0.3 s): the user-data and meta-data
    # of one storage share its snippets directory, so only the first is asked for
    names = ["aihost-box-user.yaml", "aihost-box-meta.yaml"]
    with SshSession(target(node)) as ssh:
        commands: list[str] = []
        run = ssh.run

        def counted(command: str, *args, **kwargs):
            commands.append(command)
            return run(command, *args, **kwargs)

        ssh.run = counted  # type: ignore[method-assign]
        paths = snippet_paths(ssh, "nas", names)
    assert paths == [f"/mnt/pve/nas/snippets/{name}" for name in names]
    assert commands == ["pvesm path nas:snippets/aihost-box-user.yaml"]
