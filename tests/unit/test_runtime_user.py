"""The runtime's user gets aihost's fixed uid and gid (context.RUNTIME_IDS), in a fresh
image and in one that has it with other ids (baked before, or the runtime's installer),
and only what is not its own in the model store is given to it: the rendered shell
functions run for real with stand-ins for the account tools (a passwd and group file)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_render_helpers import files, inventory, parse
from test_render_store import _stored

from provision.cloudinit import render_user_data
from provision.cloudinit.context import RUNTIME_IDS

ID = RUNTIME_IDS["ollama"]
TOOLS = {  # getent and id answer from the passwd and group files in $DB; groupadd adds
    "groupadd": 'echo "groupadd $*" >>"$LOG"; echo "$4:x:$3:" >>"$DB/group"',
    "getent": "awk -F: -v k=\"$2\" '$1 == k || $3 == k { print; f = 1 } END { exit !f }' "
    '"$DB/$1" || exit 2',
    "id": 'case "$1" in -u) f=3;; -g) f=4;; *) f=0;; esac; [ $f = 0 ] || shift\n'
    'line=$(grep "^$1:" "$DB/passwd") || exit 1\n[ $f = 0 ] || echo "$line" | cut -d: -f$f',
}


def _functions(doc_text: str) -> str:
    """runtime_user (and store_owner) as the setup script defines them."""
    script = files(parse(doc_text))["/usr/local/sbin/aihost-setup-runtime"]["content"]
    start = script.index("runtime_user() {")
    last = "store_owner() {" if "store_owner() {" in script else "runtime_user() {"
    end = script.index("\n}\n", script.index(last))
    return script[start : end + 3]


def _run(tmp_path: Path, call: str, passwd: str = "", group: str = "", store: bool = False):
    stub = tmp_path / "stub"
    stub.mkdir(exist_ok=True)
    for name in ("useradd", "groupmod", "usermod", "systemctl", "chgrp", "chown"):
        (stub / name).write_text(f'#!/bin/sh\necho "{name} $*" >>"$LOG"\n')
    for name, body in TOOLS.items():
        (stub / name).write_text(f"#!/bin/sh\n{body}\n")
    for path in stub.iterdir():
        path.chmod(0o755)
    db = tmp_path / "db"
    db.mkdir(exist_ok=True)
    (db / "passwd").write_text(passwd)
    (db / "group").write_text(group)
    inv = _stored() if store else inventory()
    script = f"set -eu\n{_functions(render_user_data(inv, 'box').text)}\n{call}\n"
    log = tmp_path / "calls.log"
    log.touch()
    env = {"PATH": f"{stub}:/usr/bin:/bin", "DB": str(db), "LOG": str(log)}
    run = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env)
    return run, log.read_text().splitlines()


def test_a_fresh_image_gets_the_user_and_group_with_the_fixed_id(tmp_path: Path) -> None:
    run, calls = _run(tmp_path, f"runtime_user ollama /usr/share/ollama {ID} ollama.service")
    assert run.returncode == 0, run.stderr
    assert calls == [
        f"groupadd -r -g {ID} ollama",
        f"useradd -r -s /bin/false -u {ID} -g {ID} -m -d /usr/share/ollama ollama",
    ]


def test_a_user_with_the_fixed_ids_is_left_as_it_is(tmp_path: Path) -> None:
    passwd = f"ollama:x:{ID}:{ID}::/usr/share/ollama:/bin/false\n"
    call = f"runtime_user ollama /usr/share/ollama {ID} ollama.service"
    run, calls = _run(tmp_path, call, passwd, f"ollama:x:{ID}:\n")
    assert (run.returncode, calls, run.stderr) == (0, [], "")


def test_an_image_with_the_user_under_other_ids_has_it_renumbered(tmp_path: Path) -> None:
    """Ollama's own installer (useradd -r -U) or an image baked before: 999 here. Its
    service is stopped first, the group and user renumbered, its home's files regrouped."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "id_ed25519").write_text("key")
    old = os.getgid()  # the group the files in home have
    passwd = f"ollama:x:999:{old}::{home}:/bin/false\n"
    call = f"runtime_user ollama /usr/share/ollama {ID} ollama.service"
    run, calls = _run(tmp_path, call, passwd, f"ollama:x:{old}:\n")
    assert run.returncode == 0, run.stderr
    assert f"aihost: user ollama has uid 999, group {old}: renumbering them to aihost's {ID}" in (
        run.stderr
    )
    assert calls[:3] == [
        "systemctl stop ollama.service",
        f"groupmod -g {ID} ollama",
        f"usermod -u {ID} ollama",
    ]
    (regroup,) = [c for c in calls if c.startswith("chgrp")]
    assert regroup.split()[:3] == ["chgrp", "-h", str(ID)]
    assert set(regroup.split()[3:]) == {str(home), str(home / "id_ed25519")}


def test_a_primary_group_other_than_its_own_is_changed_to_it(tmp_path: Path) -> None:
    passwd = f"ollama:x:{ID}:100::/nonexistent:/bin/false\n"
    call = f"runtime_user ollama /usr/share/ollama {ID} ollama.service"
    run, calls = _run(tmp_path, call, passwd, "users:x:100:\n")
    assert run.returncode == 0, run.stderr
    assert calls == [
        f"groupadd -r -g {ID} ollama",
        "systemctl stop ollama.service",
        f"usermod -g {ID} ollama",
    ]


def test_a_fixed_id_another_account_has_is_one_clear_error(tmp_path: Path) -> None:
    passwd = f"ollama:x:999:999::/usr/share/ollama:/bin/false\nalice:x:{ID}:{ID}::/h:/bin/sh\n"
    call = f"runtime_user ollama /usr/share/ollama {ID} ollama.service"
    run, calls = _run(tmp_path, call, passwd, "ollama:x:999:\n")
    assert run.returncode == 1 and calls == []
    assert run.stderr == (
        f"aihost: uid {ID} is taken by user alice in this image; aihost's ollama user has that "
        "fixed id\n"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="gives files other owners: needs root")
def test_in_the_store_only_what_is_not_the_users_is_given_to_it(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "blobs").mkdir(parents=True)
    mine, old, half = (store / "blobs" / n for n in ("mine", "old", "half"))
    for path, owner in ((mine, (ID, ID)), (old, (999, 999)), (half, (ID, 999))):
        path.write_bytes(b"x")
        os.chown(path, *owner)
    for path in (store, store / "blobs"):
        os.chown(path, ID, ID)
    run, calls = _run(tmp_path, f"store_owner {store} {ID}", store=True)
    assert run.returncode == 0, run.stderr
    (chown,) = calls
    assert chown.split()[:3] == ["chown", "-h", f"{ID}:{ID}"]
    assert set(chown.split()[3:]) == {str(old), str(half)}
