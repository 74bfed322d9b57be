"""`vm up` against Proxmox's slow refusals: qemu-server answers an agent call for a guest
whose agent is not up yet only after its 3 s guest-ping timeout (QemuServer/Agent.pm
qga_check_running; the simulator's qga_ping_timeout), so aihost pings again when the
refusal arrives if its backoff is spent, instead of adding a full pause after it."""

from __future__ import annotations

import pytest
from aihost_testing import run_aihost

REFUSAL = 1.0  # seconds the simulator takes to refuse a ping (qga_ping_timeout)


@pytest.mark.slow
def test_vm_up_pings_again_as_soon_as_a_slow_refusal_ends(sim, tmp_path):
    sim.control("durations", {"qga_ping_timeout": REFUSAL, "boot": 6.0})
    inventory = sim.inventory(tmp_path / "inv.yaml", {"small-box": {"runtime": "none"}})
    result = run_aihost("-i", str(inventory), "vm", "up", "small-box")
    assert result.exit_code == 0, result.stderr
    pings = [r for r in sim.requests() if r["path"].endswith("/agent/ping")]
    refused = [r["time"] for r in pings if r["status"] == 500]
    assert len(refused) >= 4 and pings[-1]["status"] == 200
    gaps = [later - earlier for earlier, later in zip(refused, refused[1:], strict=False)]
    # each gap is the refusal plus request overhead; a pause after it (the backoff's
    # 0.05, 0.1, 0.2, 0.4, 0.8 s) would make the later gaps 1.4 s and more
    assert all(REFUSAL - 0.05 <= gap < REFUSAL + 0.3 for gap in gaps), gaps
