"""Scenario 3: `aihost vm up --all` for fleets of 1, 5 and 20 VMs.

The simulator runs tasks in parallel, so a fleet's wall time can approach one VM's. Fleet
VMs have no GPU (the simulated node has two) and no LLM runtime; each is cloned,
configured, started and its guest agent checked.
"""

from __future__ import annotations

from typing import Any

from bench import reqlog
from bench.context import Bench, median, ratio

FIRST_VMID = 300


def fleet_vms(size: int) -> dict[str, Any]:
    """An inventory's vms: section for a fleet of this size."""
    return {
        f"node-{i:02d}": {"vmid": FIRST_VMID + i, "runtime": "none", "cores": 2, "memory_gb": 4}
        for i in range(1, size + 1)
    }


def one_run(bench: Bench, size: int) -> dict[str, Any]:
    """One `vm up --all` from a reset simulator."""
    with bench.sim(bench.durations) as sim:
        inventory = sim.inventory(sim.root / "inventory.yaml", fleet_vms(size))
        mark = sim.mark()
        proc = bench.aihost(sim, "-i", str(inventory), "vm", "up", "--all")
        proc.check(f"aihost vm up --all ({size} VMs)")
        log = sim.log(mark)
        running = sum(1 for vm in sim.vms().values() if vm.get("status") == "running")
        summary = reqlog.summary(log)
        return {
            "wall": round(proc.wall, 4),
            **summary,
            "running": running,
            "requests_per_vm": round(summary["requests"] / size, 2),
            "violations": sim.violations(),
        }


def scenario(bench: Bench) -> dict[str, Any]:
    """Wall time and requests per VM for each fleet size, and the ratio to one VM."""
    sizes: dict[str, Any] = {}
    chain = sum(bench.durations.get(k, 0.0) for k in ("qmclone", "qmconfig", "resize", "qmstart"))
    for size in bench.fleet_sizes:
        runs, failures = [], []
        for rep in range(bench.reps):
            bench.say(f"fleet: {size} VM(s), run {rep + 1}/{bench.reps}")
            try:
                runs.append(one_run(bench, size))
            except Exception as exc:  # recorded, not hidden
                failures.append(str(exc))
                break
        walls = [r["wall"] for r in runs]
        sizes[str(size)] = {
            "runs": runs,
            "failures": failures,
            "median_wall": median(walls),
            "median_requests_per_vm": median([r["requests_per_vm"] for r in runs]),
            "all_running": all(r["running"] == size for r in runs) if runs else False,
        }
    one = sizes.get("1", {}).get("median_wall")
    for entry in sizes.values():
        entry["ratio_to_one"] = ratio(entry["median_wall"], one)
    return {"sizes": sizes, "task_chain": chain, "workers": _workers()}


def _workers() -> int | None:
    try:
        from provision.vmops.fleet import MAX_WORKERS
    except ImportError:
        return None
    return int(MAX_WORKERS)
