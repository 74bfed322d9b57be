"""A VM to be cloned from a baked template older than its recipe: `vm plan` and `vm up`
say so and name the bake, in text and in JSON, and make the VM all the same."""

from __future__ import annotations

import json

from aihost_testing import run_aihost
from test_template_bake import _bake, _inventory

STALE = "is out of date with its recipe"


def test_a_template_older_than_its_recipe_is_a_note_not_an_error(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml", runtime="none", models=[])
    _, baked = _bake(inventory)
    current = run_aihost("-i", str(inventory), "vm", "plan", "llm-box")
    assert current.exit_code == 0, current.stderr
    assert STALE not in current.stdout + current.stderr
    changed = _inventory(sim, tmp_path / "changed.yaml", {"cores": 6}, runtime="none", models=[])
    plan = run_aihost("-i", str(changed), "vm", "plan", "llm-box")
    assert plan.exit_code == 0, plan.stderr
    (note,) = [line for line in plan.stdout.splitlines() if STALE in line]
    assert f"template 'gpu-base' (VM {baked['vmid']})" in note
    assert f"baked {baked['digest'][:12]}" in note
    assert "`aihost template bake gpu-base`" in note
    as_json = run_aihost("-i", str(changed), "-o", "json", "vm", "plan", "llm-box")
    assert any(STALE in n for n in json.loads(as_json.stdout)[0]["notes"]), as_json.stdout
    up = run_aihost("-i", str(changed), "-o", "json", "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 0, up.stderr
    assert [n for n in json.loads(up.stdout)["plan"]["notes"] if STALE in n] == [note.strip()[6:]]
    run_aihost("-i", str(changed), "vm", "destroy", "llm-box", "--yes")
    again = run_aihost("-i", str(changed), "vm", "up", "llm-box", "--no-wait")
    assert again.exit_code == 0 and STALE in again.stdout, again.stdout + again.stderr
    text = run_aihost("-i", str(changed), "vm", "plan", "llm-box")
    assert STALE not in text.stdout  # the VM exists now: the template plays no part
