"""context and parallel reach the running runtime, and verification sees what it runs with:
a template that drops a setting fails `vm up` with the runtime's own value."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from aihost_testing import run_aihost

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _up(inventory: Path, name: str, *, output: str = "text"):
    return run_aihost("-i", str(inventory), "-o", output, "vm", "up", name)


def _with_templates(inventory: Path, tmp_path: Path, unit: str, drop: str) -> None:
    """Point the inventory at a copy of templates/ whose unit lost every line with drop."""
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    path = copy / "units" / unit
    text = path.read_text()
    path.write_text(text.replace(drop, ""))
    assert path.read_text() != text
    data = yaml.safe_load(inventory.read_text())
    data["templates_dir"] = str(copy)
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))


def _guest(stdout: str) -> dict:
    report = json.loads(stdout)
    return report["vms"][0]["guest"] if "vms" in report else report["guest"]


def test_ollama_reports_the_inventory_context_and_parallel(sim, tmp_path):
    vm = {
        "gpu": "rtx4090",
        "runtime": "ollama",
        "models": ["llama3.1:8b"],
        "context": 16384,
        "parallel": 2,
    }
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": vm})
    result = _up(inventory, "box", output="json")
    assert result.exit_code == 0, result.stderr
    assert _guest(result.stdout)["settings"] == {"context": 16384, "parallel": 2}


def test_a_unit_without_the_ollama_context_is_caught(sim, tmp_path):
    vm = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"], "context": 16384}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": vm})
    _with_templates(
        inventory,
        tmp_path,
        "ollama.service.j2",
        "Environment=OLLAMA_CONTEXT_LENGTH={{ context_tokens }}",
    )
    result = _up(inventory, "box")
    assert result.exit_code != 0
    # Ollama's own default on a 24564 MiB card (< 24 GiB: 4k, its docs/context-length.mdx)
    assert "ollama runs with context 4096, the inventory says 16384" in result.stderr


def test_a_vllm_unit_without_max_num_seqs_is_caught(sim, tmp_path):
    vm = {
        "gpu": "rtx4090",
        "runtime": "vllm",
        "models": ["Qwen/Qwen2.5-7B-Instruct"],
        "parallel": 8,
    }
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": vm})
    _with_templates(
        inventory,
        tmp_path,
        "vllm.service.j2",
        '{{ (" --max-num-seqs " ~ parallel) if parallel else "" }}',
    )
    result = _up(inventory, "box")
    assert result.exit_code != 0
    assert "vllm reports no parallel, the inventory says 8" in result.stderr


def _check(tmp_path: Path, vm: dict) -> object:
    data = {
        "hosts": {"pve1": {"api": "sim"}},
        "gpus": {"rtx3060": {"host": "pve1", "mapping": "rtx3060", "vram_gb": 12}},
        "vms": {
            "box": {
                "host": "pve1",
                "template": "tpl",
                "gpu": "rtx3060",
                "runtime": "ollama",
                "models": ["llama3.1:8b"],
                **vm,
            }
        },
    }
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(data))
    return run_aihost("-i", str(path), "inventory", "check")


def test_the_fit_check_counts_the_parallel_sequences_the_runtime_runs(tmp_path):
    assert _check(tmp_path, {"context": 32768}).exit_code == 0
    crowded = _check(tmp_path, {"context": 32768, "parallel": 4})
    assert crowded.exit_code == 2
    assert "llama3.1:8b" in crowded.stderr and "4 parallel sequences" in crowded.stderr
