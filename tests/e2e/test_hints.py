"""Hints never loop: every command aihost suggests on the demo is one that then works, and
a swap to a VM whose inventory names another GPU is refused before anything is touched."""

from __future__ import annotations

import re
import shlex

from aihost_testing import INVENTORIES, run_aihost

DEMO = str(INVENTORIES / "demo.yaml")


def _hinted(stderr: str) -> list[list[str]]:
    """The `aihost ...` commands quoted in an error line, as argument lists."""
    return [shlex.split(cmd)[1:] for cmd in re.findall(r"`(aihost [^`]+)`", stderr)]


def test_a_held_gpu_for_a_vm_not_made_yet_hints_the_one_command_that_works(fast_demo):
    assert run_aihost("-i", DEMO, "vm", "up", "llm-box").exit_code == 0
    held = run_aihost("-i", DEMO, "vm", "up", "image-box")
    assert held.exit_code == 4
    hints = _hinted(held.stderr)
    assert hints == [["vm", "up", "image-box", "--take-gpu"]], held.stderr
    swap = run_aihost("-i", DEMO, "gpu", "swap", "rtx4090", "--to", "image-box")
    assert swap.exit_code == 2 and _hinted(swap.stderr) == hints, swap.stderr

    taken = run_aihost("-i", DEMO, *hints[0])
    assert taken.exit_code == 0, taken.stderr

    back = run_aihost("-i", DEMO, "vm", "up", "llm-box")
    assert back.exit_code == 4
    commands = _hinted(back.stderr)
    assert ["gpu", "swap", "rtx4090", "--to", "llm-box"] in commands
    assert run_aihost("-i", DEMO, "gpu", "swap", "rtx4090", "--to", "llm-box").exit_code == 0


def test_swap_to_a_vm_whose_inventory_names_another_gpu_is_refused(sim, tmp_path):
    inventory = sim.inventory(
        tmp_path / "inv.yaml",
        {"a": {"gpu": "rtx4090", "runtime": "none"}, "b": {"gpu": "rtx3060", "runtime": "none"}},
    )
    assert run_aihost("-i", str(inventory), "vm", "up", "b", "--no-wait").exit_code == 0
    before = len(sim.writes())
    refused = run_aihost("-i", str(inventory), "gpu", "swap", "rtx4090", "--to", "b")
    assert refused.exit_code == 2
    assert "gives VM 'b' rtx3060, not GPU rtx4090" in refused.stderr
    assert _hinted(refused.stderr) == [["gpu", "swap", "rtx3060", "--to", "b"]]
    assert len(sim.writes()) == before
