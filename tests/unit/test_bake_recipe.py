"""Bake recipes in the inventory (`bake:`) and their digest: what makes a re-bake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aihost_testing import run_aihost

from provision.cloudinit.bake import recipe_digest, render_bake
from provision.errors import InventoryError
from provision.inventory import parse_inventory
from provision.paths import builtin_templates_dir

BASE = """\
hosts:
  pve1: {api: sim}
bake:
  gpu-base:
    from: local:import/noble.qcow2
    host: pve1
"""


def test_the_digest_is_stable_and_follows_the_recipe() -> None:
    one = recipe_digest(parse_inventory(BASE, "a.yaml"), "gpu-base")
    assert one == recipe_digest(parse_inventory(BASE, "b.yaml"), "gpu-base")
    changed = parse_inventory(BASE + "    cuda: true\n", "a.yaml")
    assert recipe_digest(changed, "gpu-base") != one
    pinned = parse_inventory(BASE + "    versions: {ollama: 0.32.15}\n", "a.yaml")
    assert recipe_digest(pinned, "gpu-base") == one  # the default, written out


def test_the_digest_follows_the_bake_user_data(tmp_path: Path) -> None:
    inv = parse_inventory(BASE, "a.yaml")
    copy = tmp_path / "templates"
    shutil.copytree(builtin_templates_dir(), copy)
    script = copy / "scripts/install-driver-ubuntu.sh.j2"
    script.write_text(script.read_text() + "# a changed installer\n")
    edited = inv.model_copy(update={"templates_dir": copy})
    assert recipe_digest(edited, "gpu-base") != recipe_digest(inv, "gpu-base")
    assert "# a changed installer" in render_bake(edited, "gpu-base").text


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("host: pve1", "host: pve2", 6, "bake.gpu-base.host: unknown host 'pve2'"),
        ("from: local:import/noble.qcow2", "from: local:noble.qcow2", 5, "from must be a cloud"),
        ("host: pve1", "host: pve1\n    driver: '58'", 7, "bake.gpu-base.driver"),
        ("host: pve1", "host: pve1\n    runtime: tgi", 7, "bake.gpu-base.runtime"),
    ],
)
def test_a_bad_recipe_is_one_error_at_its_line(old: str, new: str, line: int, message: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_inventory(BASE.replace(old, new), "inv.yaml")
    assert caught.value.line == line and message in caught.value.message


def test_a_recipe_vmid_taken_by_a_vm_is_refused() -> None:
    text = BASE + "    vmid: 120\nvms:\n  a: {host: pve1, template: gpu-base, vmid: 120}\n"
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yaml")
    assert "bake.gpu-base.vmid: 120 is already used by vms.a" in caught.value.message


def test_inventory_show_writes_recipes_as_the_inventory_does(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(BASE)
    result = run_aihost("-i", str(path), "-o", "json", "inventory", "show")
    assert result.exit_code == 0, result.stderr
    recipe = json.loads(result.stdout)["bake"]["gpu-base"]
    assert recipe["from"] == "local:import/noble.qcow2" and "source" not in recipe


def test_inventory_schema_describes_recipes() -> None:
    result = run_aihost("inventory", "schema")
    assert result.exit_code == 0, result.stderr
    schema = json.loads(result.stdout)
    (entry,) = schema["properties"]["bake"]["patternProperties"].values()  # dns-name keys
    assert entry == {"$ref": "#/$defs/Recipe"}
    recipe = schema["$defs"]["Recipe"]
    assert set(recipe["required"]) == {"from", "host"} and recipe["additionalProperties"] is False
