"""The simulator's state is owner-only: a 0700 directory, files 0600 (state.json holds
user-data with passwords and tokens, secrets.json the simulator's own credentials)."""

from __future__ import annotations

import stat
from pathlib import Path

from provision.sim.server import SimServer
from provision.sim.state import StateStore, write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_dir_and_files_are_owner_only(tmp_path):
    state = tmp_path / "sim"
    server = SimServer(state, durations={}).start()
    try:
        with server.app.store.transaction() as world:
            world.setdefault("touched", 1)  # one write through the store
    finally:
        server.stop()
    assert _mode(state) == 0o700
    # storage/ holds the node's volumes: the fixture's seeded cloud images are public data
    # (provision/sim/fixture.py); what is uploaded goes through write_atomic (0600, below)
    files = [
        p
        for p in state.rglob("*")
        if p.is_file() and "storage" not in p.relative_to(state).parts[:1]
    ]
    assert {p.name for p in files} >= {"state.json", "secrets.json", "lock"}
    loose = {str(p.relative_to(state)): oct(_mode(p)) for p in files if _mode(p) & 0o077}
    assert loose == {}


def test_an_existing_open_state_dir_is_tightened(tmp_path):
    state = tmp_path / "old"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    StateStore(state)
    assert _mode(state) == 0o700


def test_write_atomic_defaults_to_0600(tmp_path):
    target = tmp_path / "d" / "f.json"
    write_atomic(target, b"{}")
    assert _mode(target) == 0o600
    assert _mode(target.parent) == 0o700
