"""Two `vm up X` at once make one VM X whichever clone ends first (provision.vmops.twins):
while a clone runs Proxmox shows its VM as "VM N" (no name), so a run whose own clone
ended first cannot tell a slower twin from any other VM by the list alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from aihost_testing import REPO_ROOT
from test_gpu_swap import aihost, api, control

from provision.delivery.generation import creation_mark
from provision.inventory.loader import load_inventory
from provision.pve.node import Node
from provision.pve.session import Session
from provision.vmops import twins


def _inventory(sim, tmp_path: Path) -> Path:
    return sim.inventory(tmp_path / "inv.yaml", {"plain": {"runtime": "none"}})


def _named(sim, name: str) -> list[dict[str, Any]]:
    return [r for r in api(sim, "GET", "/nodes/pve1/qemu") if r["name"] == name]


def _volumes_of(sim, vmid: int) -> list[str]:
    world = json.loads((sim.state_dir / "state.json").read_text())
    return [
        f"{sid}:{name}"
        for sid, vols in world["volumes"].items()
        for name, vol in vols.items()
        if str(vol.get("vmid")) == str(vmid)
    ]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _two_runs(inventory: Path) -> list[tuple[int, str, str]]:
    """`vm up plain --no-wait` twice at once, as two processes: (exit code, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = [sys.executable, "-m", "provision", "-i", str(inventory), "vm", "up", "plain"]
    procs = [
        subprocess.Popen(
            [*argv, "--no-wait"],
            cwd=REPO_ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    return [(p.wait(timeout=120), *p.communicate()) for p in procs]


def test_two_runs_whose_lower_vmid_clones_slower_end_with_one_vm(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    control(sim, "POST", "durations", {"qmclone": 0.2})
    # both runs plan before either VM exists (each one's first nextid hangs 1 s, so both
    # are handed 100); the first clone (100) takes 3 s more, the other run's (101) not
    hang = {"kind": "hang", "method": "GET", "path": "/cluster/nextid$", "count": 2, "seconds": 1}
    slow = {"kind": "latency", "task": "qmclone", "seconds": 3}
    control(sim, "POST", "faults", {"faults": [hang, slow]})
    results = _two_runs(inventory)
    clones = [r for r in sim.requests() if r["path"].endswith("/clone") and r["status"] == 200]
    assert [int(c["params"]["newid"]) for c in clones] == [100, 101], results
    assert sorted(code for code, _, _ in results) == [0, 4], results
    (loser,) = [err for code, _, err in results if code == 4]
    errors = [line for line in loser.splitlines() if line.startswith("aihost: error:")]
    assert len(errors) == 1 and "VM 'plain' was made at the same time" in errors[0], loser
    (kept,) = _named(sim, "plain")
    gone = 101 if kept["vmid"] == 100 else 100
    assert gone not in [r["vmid"] for r in api(sim, "GET", "/nodes/pve1/qemu")]
    assert _volumes_of(sim, gone) == []
    config = api(sim, "GET", f"/nodes/pve1/qemu/{kept['vmid']}/config")
    assert config["tags"] == "aihost" and "aihost-creating" not in config["description"]
    assert "aihost-claim" not in config["description"]


def _killed_runs_clone(sim, vmid: int, owner: str | None) -> None:
    """The clone a `vm up plain` killed right after its request left running."""
    api(
        sim,
        "POST",
        "/nodes/pve1/qemu/9000/clone",
        newid=vmid,
        name="plain",
        full=1,
        description=creation_mark("0123456789ab", "plain", owner),
    )


def test_a_rerun_during_a_gone_runs_clone_removes_that_vm_after_it_and_keeps_its_own(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    control(sim, "POST", "durations", {"qmclone": 0.2})
    control(sim, "POST", "faults", {"kind": "latency", "task": "qmclone", "seconds": 4})
    _killed_runs_clone(sim, 100, f"root@{os.uname().nodename}:{_dead_pid()}")
    assert _named(sim, "plain") == []  # "VM 100" until its clone ends
    up = aihost(inventory, "vm", "up", "plain", "--no-wait")
    assert up.exit_code == 0, up.stderr
    assert "removed VM 100, left half-made by root@" in up.stderr
    assert [r["vmid"] for r in _named(sim, "plain")] == [101]
    assert _volumes_of(sim, 100) == []


def test_a_rerun_during_a_clone_of_an_unknown_run_leaves_it_to_the_next_run(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    control(sim, "POST", "durations", {"qmclone": 0.2})
    control(sim, "POST", "faults", {"kind": "latency", "task": "qmclone", "seconds": 4})
    _killed_runs_clone(sim, 100, None)
    up = aihost(inventory, "vm", "up", "plain", "--no-wait")
    assert up.exit_code == 4, up.stderr
    assert "made at the same time by another run (VM 100 on pve1)" in up.stderr
    assert [r["vmid"] for r in _named(sim, "plain")] == [100]
    assert _volumes_of(sim, 101) == []
    again = aihost(inventory, "vm", "up", "plain", "--no-wait")
    assert again.exit_code == 0, again.stderr
    config = api(sim, "GET", "/nodes/pve1/qemu/100/config")
    assert config["tags"] == "aihost" and "lock" not in config
    assert [r["vmid"] for r in _named(sim, "plain")] == [100]


def test_the_wait_for_a_lower_vmid_being_made_is_bounded(sim, tmp_path):
    control(sim, "POST", "faults", {"kind": "latency", "task": "qmclone", "seconds": 1000})
    _killed_runs_clone(sim, 100, None)  # hangs: its task will not end in this test
    api(sim, "POST", "/nodes/pve1/qemu/9000/clone", newid=101, name="plain", full=1)
    said: list[str] = []
    session = Session(load_inventory(_inventory(sim, tmp_path)), progress=said.append)
    vm = Node(session.client("pve1"), "pve1").vm(101)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    twins.wait_for_older(
        session, vm, "plain", ["pve1"], timeout=5, clock=lambda: now[0], sleep=sleep
    )
    assert 5 <= now[0] < 6 and said == ["plain: waiting for VM 100 to be made: it may be a twin"]


def test_a_finished_vm_wins_over_a_half_made_twin_a_gone_run_left(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    assert aihost(inventory, "vm", "up", "plain", "--no-wait").exit_code == 0
    _killed_runs_clone(sim, 101, f"root@{os.uname().nodename}:{_dead_pid()}")
    again = aihost(inventory, "vm", "up", "plain", "--no-wait")
    assert again.exit_code == 0, again.stderr
    assert "no changes" in again.stdout + again.stderr
    assert "tags" not in api(sim, "GET", "/nodes/pve1/qemu/101/config")


def test_a_half_made_vm_a_live_run_of_this_machine_is_making_is_not_taken_over(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    _killed_runs_clone(sim, 100, f"root@{os.uname().nodename}:{os.getpid()}")
    up = aihost(inventory, "vm", "up", "plain", "--no-wait")
    assert up.exit_code == 4, up.stderr
    assert "is creating 'plain'" in up.stderr
    assert "tags" not in api(sim, "GET", "/nodes/pve1/qemu/100/config")


def test_two_runs_with_the_inventorys_vmid_end_with_one_vm(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"plain": {"runtime": "none", "vmid": 150}})
    control(sim, "POST", "durations", {"qmclone": 1.0})
    results = _two_runs(inventory)
    assert sorted(code for code, _, _ in results) == [0, 4], results
    (loser,) = [err for code, _, err in results if code == 4]
    assert len([ln for ln in loser.splitlines() if ln.startswith("aihost: error:")]) == 1, loser
    assert [r["vmid"] for r in _named(sim, "plain")] == [150], loser


def test_after_its_clone_a_run_reads_its_own_config_then_lists_its_node_once(sim, tmp_path):
    # the commit's digest guard covers what a list read after the own config shows, so
    # when no twin is being made the wait and the contest take that one list
    inventory = _inventory(sim, tmp_path)
    before = len(sim.requests())
    assert aihost(inventory, "vm", "up", "plain", "--no-wait").exit_code == 0
    log = [(r["method"], r["path"].removeprefix("/api2/json")) for r in sim.requests(before)]
    polled = max(i for i, (_, path) in enumerate(log) if ":qmclone:" in path)
    commit = log.index(("PUT", "/nodes/pve1/qemu/100/config"))
    assert log[polled + 1 : commit] == [
        ("GET", "/nodes/pve1/qemu/100/config"),
        ("GET", "/nodes/pve1/qemu"),
    ]
