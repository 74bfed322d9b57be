"""VMs sharing a node's model store fetch their models one at a time: the rendered
aihost-state's `store-lock` (a lock directory made with mkdir, atomic on the node's file
system whatever virtiofsd does with flock) run for real by two sandboxed guests at once
on one store directory, a holder that died mid-fetch taken over, and aihost-boot
starting the runtime and fetching under the lock only when the VM uses a store."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from test_firstboot_flow import Sandbox, _need
from test_render_helpers import files, parse
from test_render_store import _stored

from provision.cloudinit import render_user_data

LOCK = ".aihost-download.lock"
STATE = "/usr/local/sbin/aihost-state"


def _stored_box(root: Path) -> Sandbox:
    """A sandboxed guest of a VM that uses its node's model store."""
    _need("python3", "jq", "curl")
    return Sandbox(root, parse(render_user_data(_stored(), "box").text))


def _guest(root: Path, store: Path, name: str) -> Sandbox:
    """A sandboxed guest whose `fetch` stub logs its start and end in the store."""
    box = _stored_box(root)
    box.stub(
        "fetch",
        f'echo "{name} start $(date +%s.%N)" >>{store}/fetches\n'
        f"sleep 0.6\n"
        f'echo "{name} end $(date +%s.%N)" >>{store}/fetches',
        "bin",
    )
    assert box.run("bin/aihost-state", "set", "models", "running").returncode == 0
    return box


def _popen(box: Sandbox, *args: str) -> subprocess.Popen[str]:
    import os

    env = {**os.environ, "PATH": f"{box.root / 'stub'}:/usr/bin:/bin", "LOG": str(box.root / "log")}
    return subprocess.Popen(
        [str(box.root / "bin/aihost-state"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _intervals(store: Path) -> dict[str, tuple[float, float]]:
    marks: dict[str, dict[str, float]] = {}
    for line in (store / "fetches").read_text().splitlines():
        name, what, at = line.split()
        marks.setdefault(name, {})[what] = float(at)
    return {name: (m["start"], m["end"]) for name, m in marks.items()}


def test_two_guests_on_one_store_fetch_one_after_the_other(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    a = _guest(tmp_path / "a", store, "a")
    b = _guest(tmp_path / "b", store, "b")
    first = _popen(a, "store-lock", str(store), "--", str(a.root / "bin/fetch"))
    time.sleep(0.2)  # a holds the lock; b comes while a fetches
    second = _popen(b, "store-lock", str(store), "--", str(b.root / "bin/fetch"))
    time.sleep(0.2)
    waiting = b.state().get("store_wait")  # b says whom it waits for, for `vm up` to show
    out_a, out_b = first.communicate(timeout=30), second.communicate(timeout=30)
    assert (first.returncode, second.returncode) == (0, 0), (out_a, out_b)
    spans = _intervals(store)
    assert spans["a"][1] <= spans["b"][0]  # b began after a ended: no overlap
    assert waiting is not None and "(instance aihost-box-g1" in waiting["holder"]
    assert "to finish its download" in out_b[1]
    assert "store_wait" not in b.state()  # gone once it holds the lock
    assert not (store / LOCK).exists()  # released


def test_a_store_that_is_not_there_is_one_line_of_error(tmp_path: Path) -> None:
    box = _stored_box(tmp_path / "g")
    run = box.run("bin/aihost-state", "store-lock", str(tmp_path / "gone"), "--", "true")
    assert run.returncode == 1
    assert (
        run.stderr
        == f"aihost: cannot lock the model store {tmp_path / 'gone'}: No such file or directory\n"
    )


def test_the_commands_exit_status_is_kept_and_the_lock_released_on_failure(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    box = _stored_box(tmp_path / "g")
    box.stub("fail", "echo 'pull model manifest: file does not exist' >&2; exit 3", "bin")
    run = box.run("bin/aihost-state", "store-lock", str(store), "--", str(box.root / "bin/fail"))
    assert run.returncode == 3
    assert "file does not exist" in run.stderr
    assert not (store / LOCK).exists()


def _fast_stale(box: Sandbox, seconds: str) -> None:
    script = box.root / "bin/aihost-state"
    text = script.read_text()
    assert "STALE = 300.0" in text
    script.write_text(text.replace("STALE = 300.0", f"STALE = {seconds}"))


def test_a_lock_whose_holder_stopped_beating_is_taken_over(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / LOCK).mkdir(parents=True)
    (store / LOCK / "holder").write_text("llm-box (instance aihost-llm-box-g1, pid 9)\n")
    box = _guest(tmp_path / "g", store, "g")
    _fast_stale(box, "1.0")
    run = box.run("bin/aihost-state", "store-lock", str(store), "--", str(box.root / "bin/fetch"))
    assert run.returncode == 0, run.stderr
    assert "waiting for llm-box (instance aihost-llm-box-g1, pid 9)" in run.stderr
    assert "taking over the model store's lock from llm-box" in run.stderr
    assert "g" in _intervals(store)
    assert sorted(p.name for p in store.iterdir()) == ["fetches"]  # nothing left behind


def test_a_holder_that_still_beats_is_waited_for(tmp_path: Path) -> None:
    """The holder's file changes (its heartbeat): however long that goes on, no takeover."""
    store = tmp_path / "store"
    (store / LOCK).mkdir(parents=True)
    holder = store / LOCK / "holder"
    holder.write_text("other (instance i, pid 1)\n")
    box = _guest(tmp_path / "g", store, "g")
    _fast_stale(box, "1.0")
    script = box.root / "bin/aihost-state"
    script.write_text(
        script.read_text().replace(
            "def acquire(store, me, poll=2.0", "def acquire(store, me, poll=0.2"
        )
    )
    waiter = _popen(box, "store-lock", str(store), "--", str(box.root / "bin/fetch"))
    for _ in range(15):  # 3 s of beats, three times the stale time
        time.sleep(0.2)
        holder.touch()
    assert waiter.poll() is None  # still waiting
    assert not (store / "fetches").exists()
    holder.unlink()
    (store / LOCK).rmdir()  # the holder releases
    out = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, out
    assert "taking over" not in out[1]


def test_a_taken_over_holder_leaves_the_new_lock_alone(tmp_path: Path) -> None:
    """A holder that was only slow (taken over, then ends) must not remove the lock its
    successor now holds."""
    store = tmp_path / "store"
    store.mkdir()
    box = _stored_box(tmp_path / "g")
    box.stub(
        "slow",
        f"rm -rf {store}/{LOCK}\nmkdir {store}/{LOCK}\necho 'next (pid 2)' >{store}/{LOCK}/holder",
        "bin",
    )
    run = box.run("bin/aihost-state", "store-lock", str(store), "--", str(box.root / "bin/slow"))
    assert run.returncode == 0, run.stderr
    assert (store / LOCK / "holder").read_text() == "next (pid 2)\n"


def _boot(doc: dict[str, Any]) -> str:
    return str(files(doc)["/var/lib/cloud/scripts/per-boot/aihost-boot"]["content"])


def test_aihost_boot_fetches_under_the_lock_only_with_a_store() -> None:
    stored = _boot(parse(render_user_data(_stored(), "box").text))
    lines = [ln.strip() for ln in stored.splitlines()]
    assert (
        "/usr/local/sbin/aihost-state run runtime -- /usr/local/sbin/aihost-setup-runtime "
        "install || exit 1"
    ) in lines
    assert (
        "/usr/local/sbin/aihost-state run models -- /usr/local/sbin/aihost-state store-lock "
        "/var/lib/aihost/models -- /usr/local/sbin/aihost-setup-runtime serve || exit 1"
    ) in lines
    from test_render_helpers import inventory

    plain = parse(render_user_data(inventory(None), "box").text)
    assert "store-lock" not in _boot(plain)
    assert "store-lock" not in files(plain)["/usr/local/sbin/aihost-state"]["content"]
    assert "aihost-setup-runtime models || exit 1" in _boot(plain)


def test_the_stored_boot_runs_install_then_serve_under_the_lock(tmp_path: Path) -> None:
    """The rendered aihost-boot of a VM with a store, run for real: the runtime is
    installed in the runtime phase, started and fed its models in the models phase,
    with the lock held (the setup stub sees the lock directory)."""
    box = _stored_box(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    boot = box.root / "cloud/scripts/per-boot/aihost-boot"
    boot.write_text(boot.read_text().replace(str(tmp_path / "aihost/models"), str(store)))
    box.stub(
        "aihost-setup-runtime",
        f'echo "setup $1 lock=$([ -d {store}/{LOCK} ] && echo held || echo free)" >>"$LOG"',
        "bin",
    )
    box.stub("aihost-health", 'echo "{}"', "bin")
    (tmp_path / "aihost/firstboot-done").write_text("aihost-box-g1\n")
    run = box.run("cloud/scripts/per-boot/aihost-boot")
    assert run.returncode == 0, run.stderr
    calls = [ln for ln in (tmp_path / "calls.log").read_text().splitlines() if "setup" in ln]
    assert calls == ["setup install lock=free", "setup serve lock=held"]
    assert box.state()["phases"]["models"]["status"] == "ok"
    assert not (store / LOCK).exists()


def test_a_waiter_that_moved_a_fresh_lock_aside_puts_it_back(tmp_path: Path) -> None:
    """Two waiters take over one stale lock at once: the first removes it and makes its
    own; the second, which read the stale holder a moment before, then moves that fresh
    lock aside. It finds a holder it did not judge stale and puts the lock back, so the
    first keeps it until it releases; the second then takes its turn."""
    import importlib.util
    import threading

    store = tmp_path / "store"
    lock = store / LOCK
    lock.mkdir(parents=True)
    (lock / "holder").write_text("first (instance aihost-a-g1, pid 1)\n")  # the fresh lock
    path = tmp_path / "aihost_state.py"
    path.write_text(str(files(parse(render_user_data(_stored(), "box").text))[STATE]["content"]))
    spec = importlib.util.spec_from_file_location("aihost_state_lock", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    real, start = module._holder_stamp, time.monotonic()

    def stale_until_judged(where: str) -> tuple[str | None, int | None]:
        # What the second waiter read before the first took over: the dead holder, unchanged.
        if where == str(lock) and time.monotonic() - start < 1.2:
            return "dead (instance aihost-dead-g1, pid 9)", 1
        return real(where)

    module._holder_stamp = stale_until_judged
    seen_by_first: list[str] = []

    def first_finishes() -> None:
        time.sleep(1.6)
        seen_by_first.append((lock / "holder").read_text())
        (lock / "holder").unlink()
        lock.rmdir()

    finisher = threading.Thread(target=first_finishes)
    finisher.start()
    got = module.acquire(str(store), "second (instance aihost-b-g1, pid 2)", poll=0.05, stale=1.0)
    finisher.join()
    assert seen_by_first == ["first (instance aihost-a-g1, pid 1)\n"]  # put back, untouched
    assert got == str(lock)
    assert (lock / "holder").read_text() == "second (instance aihost-b-g1, pid 2)\n"
    assert sorted(p.name for p in store.iterdir()) == [LOCK]  # no lock left aside
