"""A GPU shared by several VMs is normal: `vm up --all` makes every VM, gives the card to
one (its current holder, else the first in inventory order) and leaves the others made
and stopped, saying how to move it; `vm plan` shows a plan whatever the GPU's holder."""

from __future__ import annotations

import json

from aihost_testing import run_aihost
from test_gpu_swap import api
from test_vm_up import _config

SHARED = {
    "first": {"gpu": "rtx4090", "runtime": "none"},
    "second": {"gpu": "rtx4090", "runtime": "none"},
    "other": {"gpu": "rtx3060", "runtime": "none"},
}


def _hostpci(config: dict) -> list[str]:
    return [k for k in config if k.startswith("hostpci")]


def test_vm_up_all_shares_a_gpu_and_exits_0(sim, tmp_path):
    inventory = str(sim.inventory(tmp_path / "inv.yaml", SHARED))
    result = run_aihost("-i", inventory, "-o", "json", "vm", "up", "--all")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)  # one document
    assert [d["vm"] for d in data] == ["first", "other", "second"]
    first, second, other = (_config(sim, n) for n in ("first", "second", "other"))
    assert first["_vm"]["status"] == "running" and _hostpci(first)
    assert other["_vm"]["status"] == "running" and _hostpci(other)
    assert second["_vm"]["status"] == "stopped" and not _hostpci(second)
    text = run_aihost("-i", inventory, "vm", "up", "--all")
    assert text.exit_code == 0, text.stderr
    assert "`aihost gpu swap rtx4090 --to second` moves it here" in text.stdout
    assert text.stdout.count("no changes") == 3  # a re-run changes nothing

    # the hint works, and afterwards --all keeps the card where it now is
    assert run_aihost("-i", inventory, "gpu", "swap", "rtx4090", "--to", "second").exit_code == 0
    again = run_aihost("-i", inventory, "vm", "up", "--all")
    assert again.exit_code == 0, again.stderr
    assert again.stdout.count("no changes") == 3, again.stdout
    assert _hostpci(_config(sim, "second")) and not _hostpci(_config(sim, "first"))


def test_vm_plan_shows_the_plan_of_a_vm_whose_gpu_is_held(sim, tmp_path):
    inventory = str(sim.inventory(tmp_path / "inv.yaml", SHARED))
    assert run_aihost("-i", inventory, "vm", "up", "first").exit_code == 0
    plan = run_aihost("-i", inventory, "-o", "json", "vm", "plan", "second")
    assert plan.exit_code == 0, plan.stderr
    shown = json.loads(plan.stdout)[0]
    assert any(
        "needs GPU rtx4090" in note and "held by VM 'first'" in note for note in shown["notes"]
    ), shown
    kinds = [a["kind"] for a in shown["actions"]]
    assert "clone" in kinds and "start" not in kinds


def test_vm_up_all_partial_failure_is_one_document_and_a_documented_exit_code(sim, tmp_path):
    vms = {
        "good": {"gpu": "rtx3060", "runtime": "none"},
        "bad": {"gpu": "rtx4090", "runtime": "none", "template": "no-such-template"},
    }
    inventory = str(sim.inventory(tmp_path / "inv.yaml", vms))
    result = run_aihost("-i", inventory, "-o", "json", "vm", "up", "--all")
    assert result.exit_code == 2, result.stderr
    data = json.loads(result.stdout)  # exactly one JSON document
    assert {d["vm"] for d in data} == {"good", "bad"}
    assert next(d for d in data if d["vm"] == "bad")["exit_code"] == 2


def test_vm_up_all_leaves_the_card_with_the_vm_whose_config_names_it(sim, tmp_path):
    """No lease names a holder (the mapping's description was edited, or the card attached
    by hand): `vm up --all` keeps the card where a config names it, and does not take it
    out of a running VM to give it to the first of the batch."""
    inventory = str(sim.inventory(tmp_path / "inv.yaml", SHARED))
    assert run_aihost("-i", inventory, "vm", "up", "second").exit_code == 0
    mapping = api(sim, "GET", "/cluster/mapping/pci/rtx4090")
    api(
        sim,
        "PUT",
        "/cluster/mapping/pci/rtx4090",
        map=mapping["map"],
        delete="description",
        digest=mapping["digest"],
    )
    result = run_aihost("-i", inventory, "vm", "up", "--all")
    assert result.exit_code == 0, result.stderr
    first, second = _config(sim, "first"), _config(sim, "second")
    assert second["_vm"]["status"] == "running" and _hostpci(second)
    assert first["_vm"]["status"] == "stopped" and not _hostpci(first)
    assert "`aihost gpu swap rtx4090 --to first` moves it here" in result.stdout
