"""llama.cpp models come from somewhere: `inventory check` refuses a llamacpp VM with no
GGUF source or a download without its checksum (exit 2, file:line, what to write)."""

from __future__ import annotations

from pathlib import Path

import yaml
from aihost_testing import run_aihost

HEAD = """version: 1
hosts:
  pve1: {api: sim}
vms:
  small-box:
    host: pve1
    template: ubuntu-2404-cloud
    runtime: llamacpp
"""


def _check(tmp_path: Path, tail: str):
    path = tmp_path / "inv.yaml"
    path.write_text(HEAD + tail)
    return path, run_aihost("-i", str(path), "inventory", "check")


def test_llamacpp_without_a_model_source_is_refused_with_what_to_write(tmp_path):
    path, result = _check(tmp_path, "    llamacpp: {context: 4096}\n")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"aihost: error: {path}:5: vms.small-box: runtime "
        "llamacpp needs its GGUF model: llamacpp: {hf_repo: "
    )
    assert "sha256" in result.stderr and "model_path" in result.stderr


def test_a_download_without_its_sha256_is_refused(tmp_path):
    path, result = _check(tmp_path, "    llamacpp:\n      hf_repo: a/b\n      hf_file: m.gguf\n")
    assert result.exit_code == 2
    assert f"{path}:9: vms.small-box.llamacpp: a downloaded model needs its sha256" in (
        result.stderr
    )


def test_vm_up_reports_a_download_whose_checksum_differs(sim, tmp_path):
    demo = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "inventories" / "demo.yaml").read_text()
    )["vms"]["small-box"]
    wrong = {**demo["llamacpp"], "sha256": "0" * 64}
    vm = {"gpu": "rtx3060", "runtime": "llamacpp", "llamacpp": wrong}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"small-box": vm})
    result = run_aihost("-i", str(inventory), "vm", "up", "small-box")
    assert result.exit_code != 0
    assert f"has SHA-256 {demo['llamacpp']['sha256']}, not the inventory's {'0' * 64}" in (
        result.stderr
    )
    right = sim.inventory(
        tmp_path / "inv.yaml", {"small-box": {**vm, "llamacpp": demo["llamacpp"]}}
    )
    again = run_aihost("-i", str(right), "vm", "up", "small-box", "--reprovision")
    assert again.exit_code == 0, again.stderr
