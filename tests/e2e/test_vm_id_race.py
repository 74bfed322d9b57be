"""`vm up` when another run takes the id nextid handed out (nextid reserves nothing):
the clone is refused before anything is made, and another id is taken."""

from __future__ import annotations

from aihost_testing import run_aihost
from test_gpu_swap import api, control

TAKEN = "unable to create VM 100: config file already exists"


def _clones(sim, since: int) -> list[dict]:
    return [
        r for r in sim.requests(since) if r["method"] == "POST" and r["path"].endswith("/clone")
    ]


def test_an_id_taken_between_nextid_and_clone_is_replaced(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"plain": {"runtime": "none"}})
    control(
        sim,
        "POST",
        "faults",
        {"kind": "http500", "method": "POST", "path": "/qemu/9000/clone$", "message": TAKEN},
    )
    up = run_aihost("-i", str(inventory), "vm", "up", "plain", "--no-wait")
    assert up.exit_code == 0, up.stderr
    assert "VM id 100 was taken by another create meanwhile" in up.stderr
    assert [r["status"] for r in _clones(sim, 0)] == [500, 200]
    assert [r["name"] for r in api(sim, "GET", "/nodes/pve1/qemu") if not r.get("template")] == [
        "plain"
    ]
