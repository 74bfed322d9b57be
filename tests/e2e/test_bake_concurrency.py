"""Two `template bake` of one recipe at once share only Proxmox: one bakes, the other
stops with exit 4 and leaves nothing behind (provision.vmops.bake_claim); a killed bake's
VM is removed by the re-run when its run is gone, and named with the command that removes
it when that cannot be told."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from typing import Any

import pytest
from aihost_testing import REPO_ROOT, run_aihost
from test_gpu_swap import api, control
from test_template_bake import _inventory

from provision.errors import ConflictError
from provision.inventory.loader import load_inventory
from provision.pve.node import Node
from provision.pve.session import Session
from provision.vmops.bake_claim import _commit, claim

MARK = "aihost-bake: gpu-base sha256:" + "ab" * 32


def _world(sim) -> dict[str, Any]:
    return json.loads((sim.state_dir / "state.json").read_text())


def _named(sim, name: str) -> dict[int, dict[str, Any]]:
    return {
        int(vmid): vm for vmid, vm in _world(sim)["vms"].items() if vm["config"].get("name") == name
    }


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _clone(sim, vmid: int, owner: str) -> None:
    description = f"{MARK}\naihost-bake-owner: {owner}"
    api(sim, "POST", "/nodes/pve1/qemu/9000/clone", newid=vmid, name="gpu-base", full=1,
        description=description)  # fmt: skip


@pytest.mark.slow
def test_two_bakes_of_one_recipe_at_once_bake_one_template(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml")
    control(sim, "POST", "durations", {"qmclone": 0.5})
    # both runs read the cluster before either makes its VM: each one's nextid hangs 2 s
    hang = {"kind": "hang", "method": "GET", "path": "/cluster/nextid$", "count": 2, "seconds": 2}
    control(sim, "POST", "faults", hang)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = [sys.executable, "-m", "provision", "-i", str(inventory)]
    argv += ["template", "bake", "gpu-base"]
    procs = [
        subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )  # fmt: skip
        for _ in range(2)
    ]
    results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    assert sorted(code for code, _, _ in results) == [0, 4], results
    (winner,) = [out for code, out, _ in results if code == 0]
    (loser,) = [err for code, _, err in results if code == 4]
    errors = [line for line in loser.splitlines() if line.startswith("aihost: error:")]
    assert len(errors) == 1 and "gpu-base" in errors[0], loser
    assert winner.startswith("gpu-base: baked"), results
    made = _named(sim, "gpu-base")
    assert [vm["config"].get("template") for vm in made.values()] == ["1"], made
    (template,) = made.values()
    assert re.fullmatch(
        r"aihost-bake: gpu-base sha256:[0-9a-f]{64}", template["config"]["description"]
    )
    assert not list((sim.state_dir / "storage/local").rglob("*bake-gpu-base*"))
    clones = [r for r in sim.requests() if r["path"].endswith("/clone") and r["status"] == 200]
    assert len(clones) == 2, loser  # both made a VM: the claim, not the first read, decided


def _session(sim, tmp_path) -> Session:
    return Session(load_inventory(_inventory(sim, tmp_path / "inv.yaml")))


def _vm(session: Session, vmid: int) -> Any:
    return Node(session.client("pve1"), "pve1").vm(vmid)


def test_the_lower_vmid_makes_the_other_yield_and_a_commit_after_that_fails(sim, tmp_path):
    session = _session(sim, tmp_path)
    _clone(sim, 300, f"op@elsewhere:{os.getpid()}")
    _clone(sim, 301, f"op@elsewhere:{os.getpid()}")
    late = _vm(session, 301)
    stale = late.config()  # 301 read its digest, then listed before 300 existed ...
    # ... and 300 lists, sees 301 and makes it yield
    claim(_vm(session, 300), "gpu-base", set())
    description = _named(sim, "gpu-base")[301]["config"]["description"]
    assert description.endswith("aihost-bake-state: yielded to VM 300")
    with pytest.raises(ConflictError, match="VM 300 on pve1"):
        _commit(late, "gpu-base", stale)  # 301's commit: its digest changed
    assert _named(sim, "gpu-base")[300]["config"]["description"].endswith(
        "aihost-bake-state: baking"
    )


def test_a_committed_higher_vmid_wins_over_a_later_lower_one(sim, tmp_path):
    session = _session(sim, tmp_path)
    _clone(sim, 301, f"op@elsewhere:{os.getpid()}")
    claim(_vm(session, 301), "gpu-base", set())  # listed first, alone: committed
    _clone(sim, 300, f"op@elsewhere:{os.getpid()}")
    with pytest.raises(ConflictError, match=r"VM 301 on pve1 by op@elsewhere"):
        claim(_vm(session, 300), "gpu-base", set())
    assert _named(sim, "gpu-base")[301]["config"]["description"].endswith(
        "aihost-bake-state: baking"
    )


def test_a_killed_bakes_vm_is_removed_when_its_run_is_gone_else_named(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml")
    _clone(sim, 300, f"op@{socket.gethostname()}:{_dead_pid()}")
    api(sim, "POST", "/nodes/pve1/qemu/300/status/start")
    _clone(sim, 301, f"op@elsewhere:{os.getpid()}")
    busy = run_aihost("-i", str(inventory), "template", "bake", "gpu-base")
    assert busy.exit_code == 4, busy.stderr
    assert "VM 301 on pve1 is baking 'gpu-base' (stopped) for op@elsewhere" in busy.stderr
    assert "qm stop 301; qm destroy 301" in busy.stderr
    assert 300 not in _named(sim, "gpu-base")  # its owner's process is gone: removed
    api(sim, "DELETE", "/nodes/pve1/qemu/301")
    result = run_aihost("-i", str(inventory), "template", "bake", "gpu-base")
    assert result.exit_code == 0, result.stderr
    assert [vm["config"].get("template") for vm in _named(sim, "gpu-base").values()] == ["1"]


def test_a_template_a_rival_finished_before_the_listing_wins_an_old_one_does_not(sim, tmp_path):
    session = _session(sim, tmp_path)
    _clone(sim, 300, f"op@elsewhere:{os.getpid()}")
    api(sim, "POST", "/nodes/pve1/qemu/300/template")  # a rival's bake, converted already
    _clone(sim, 301, f"op@elsewhere:{os.getpid()}")
    with pytest.raises(ConflictError, match="VM 300 on pve1"):
        claim(_vm(session, 301), "gpu-base", set())
    claim(_vm(session, 301), "gpu-base", {300})  # the template this run saw at its start
    assert _named(sim, "gpu-base")[301]["config"]["description"].endswith(
        "aihost-bake-state: baking"
    )
