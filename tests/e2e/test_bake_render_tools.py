"""Bake user-data (`aihost template bake`) checked by the real tools, as the VMs' is:
`cloud-init schema` on every recipe combination, shellcheck on every script in them.

3 distros x 4 runtimes x driver/none x CUDA on/off = 48 documents."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from aihost_testing import cloud_init_schema_failures, require_tool

from provision.cloudinit.bake import recipe_digest, render_bake
from provision.inventory.model import Inventory

DISTROS = ("ubuntu-24.04", "ubuntu-22.04", "debian-12")
RUNTIMES = ("ollama", "vllm", "llamacpp", "none")
COMBOS = list(itertools.product(DISTROS, RUNTIMES, ("580", None), (True, False)))


def _inventory(distro: str, runtime: str, driver: str | None, cuda: bool) -> Inventory:
    recipe = {"from": "local:import/noble.qcow2", "host": "pve", "distro": distro}
    recipe.update(runtime=runtime, driver=driver, cuda=cuda)
    return Inventory.model_validate({"hosts": {"pve": {"api": "sim"}}, "bake": {"base": recipe}})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[Any, ...], Path]:
    out = tmp_path_factory.mktemp("bake")
    paths = {}
    for combo in COMBOS:
        inv = _inventory(*combo)
        path = out / ("-".join(str(part) for part in combo) + ".yaml")
        path.write_text(render_bake(inv, "base", recipe_digest(inv, "base")).text)
        paths[combo] = path
    return paths


def test_a_bake_installs_records_cleans_and_powers_off(rendered):
    for (_distro, runtime, driver, cuda), path in rendered.items():
        doc = yaml.safe_load(path.read_text())
        files = {item["path"]: item["content"] for item in doc["write_files"]}
        firstboot = files["/usr/local/sbin/aihost-firstboot"]
        assert ("aihost-install-driver" in firstboot) == (driver is not None), path.name
        toolkit = cuda or (driver is not None and runtime == "llamacpp")
        assert ("aihost-install-cuda" in firstboot) == toolkit, path.name
        assert ("aihost-setup-runtime install" in firstboot) == (runtime != "none"), path.name
        assert "cloud-init clean --logs --machine-id --seed" in firstboot
        record = json.loads(files["/etc/aihost/bake.json"])
        assert record["driver"] == (driver or "") and record["runtime"] == runtime
        assert len(record["digest"]) == 64
        assert doc["power_state"]["mode"] == "poweroff"
        assert doc["power_state"]["condition"] == "[ -f /etc/aihost/baked.json ]"


def test_cloud_init_schema_accepts_every_bake(rendered):
    failed = cloud_init_schema_failures(list(rendered.values()))
    assert not failed, "\n".join(failed)


def test_shellcheck_finds_nothing_in_any_bake_script(rendered, tmp_path):
    tool = require_tool("shellcheck")
    written: dict[str, Path] = {}
    for path in rendered.values():
        doc = yaml.safe_load(path.read_text())
        scripts = {
            item["path"]: item["content"]
            for item in doc["write_files"]
            if str(item["content"]).startswith("#!/bin/sh")
        }
        scripts["runcmd"] = "#!/bin/sh\n" + "\n".join(
            [*doc["runcmd"], doc["power_state"]["condition"]]
        )
        for index, (name, text) in enumerate(scripts.items()):
            if text not in written:  # one file per distinct text: the verdict is the same
                written[text] = tmp_path / f"{path.stem}-{index}-{Path(name).name}.sh"
                written[text].write_text(text, encoding="utf-8")
    run = subprocess.run(
        [tool, "-s", "sh", "-S", "style", *map(str, written.values())],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[:5000]
