"""`aihost models fit|list` and the refusal in `inventory check`, as a user runs them."""

from __future__ import annotations

import textwrap

from aihost_testing import INVENTORIES, run_aihost


def test_fit_prints_breakdown_verdict_and_largest_context():
    r = run_aihost("models", "fit", "llama3.1:8b", "--vram", "24")
    assert r.exit_code == 0, r.stderr
    for word in (
        "weights",
        "KV cache",
        "overhead",
        "total",
        "GiB",
        "verdict   fits",
        "largest context that fits",
    ):
        assert word in r.stdout


def test_fit_json_shape():
    r = run_aihost(
        "-o",
        "json",
        "models",
        "fit",
        "llama3.1:70b-instruct-q4_K_M",
        "--vram",
        "24",
        "--vram",
        "24",
        "--context",
        "8192",
    )
    assert r.exit_code == 0, r.stderr
    data = r.json()
    assert data["verdict"] in ("fits", "tight")
    assert set(data["estimate"]["gib"]) == {"weights", "kv_cache", "overhead", "total"}
    assert data["estimate"]["quant"]["name"] == "q4_K_M"
    assert data["vram"]["vram_gb"] == [24.0, 24.0]
    assert data["largest_context"] >= 8192
    assert "GiB" in data["units"]


def test_fit_that_does_not_fit_says_so_and_what_to_try():
    r = run_aihost("models", "fit", "llama3.1:70b", "--vram", "24", "--context", "8192")
    assert r.exit_code == 2
    assert "does-not-fit" in r.stdout and "try" in r.stdout
    assert r.stderr.count("\n") == 1 and "but a 24 GB GPU gives" in r.stderr


def test_fit_that_does_not_fit_as_json_is_one_document_and_exit_2():
    r = run_aihost("-o", "json", "models", "fit", "llama3.1:70b", "--vram", "24")
    assert r.exit_code == 2
    assert r.json()["verdict"] == "does-not-fit"


def test_fit_with_params_for_a_model_not_in_the_catalog():
    r = run_aihost("-o", "json", "models", "fit", "--params", "13B", "--quant", "q4_K_M")
    assert r.exit_code == 0, r.stderr
    data = r.json()
    assert data["estimate"]["params_b"] == 13
    assert data["estimate"]["shape"]["borrowed_from"]
    assert "RTX 3060" in data["fits_common_cards"]


def test_unknown_model_exit_2_with_suggestion():
    r = run_aihost("models", "fit", "lama3.1:8b", "--vram", "24")
    assert r.exit_code == 2
    assert "unknown" in r.stderr and "llama3.1:8b" in r.stderr


def test_bad_quant_name_exit_2():
    r = run_aihost("models", "fit", "llama3.1:8b", "--quant", "q4_K_Q")
    assert r.exit_code == 2
    assert "unknown quantization 'q4_K_Q'" in r.stderr


def test_list_for_an_inventory_gpu_best_first():
    r = run_aihost(
        "-i", str(INVENTORIES / "demo.yaml"), "-o", "json", "models", "list", "--gpu", "rtx3060"
    )
    assert r.exit_code == 0, r.stderr
    group = r.json()["gpus"][0]
    assert group["gpu"] == "rtx3060"
    params = [row["params_b"] for row in group["models"]]
    assert params == sorted(params, reverse=True)
    assert all(row["needs_gib"] <= group["usable_gib"] for row in group["models"])
    assert "llama3.1-70b" not in {row["model"] for row in group["models"]}


def test_list_with_vram_needs_no_inventory():
    r = run_aihost("models", "list", "--vram", "80")
    assert r.exit_code == 0, r.stderr
    assert "llama3.1-70b" in r.stdout


def _inventory(tmp_path, gpu_gb: float, runtime: str, model: str):
    path = tmp_path / "inv.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        version: 1
        hosts:
          pve1: {{api: sim}}
        gpus:
          card: {{host: pve1, mapping: card, vram_gb: {gpu_gb}}}
        vms:
          box:
            host: pve1
            template: ubuntu-2404-cloud
            gpu: card
            runtime: {runtime}
            models: ["{model}"]
            context: 8192
        """)
    )
    return str(path)


def test_inventory_check_refuses_a_model_that_does_not_fit(tmp_path):
    inv = _inventory(tmp_path, 12, "ollama", "llama3.1:70b")
    r = run_aihost("-i", inv, "inventory", "check")
    assert r.exit_code == 2
    assert "does not fit" in r.stderr and "GiB" in r.stderr
    offload = run_aihost("-i", inv, "inventory", "check", "--allow-cpu-offload")
    assert offload.exit_code == 0, offload.stderr
    assert "system RAM" in offload.stderr + offload.stdout


def test_inventory_check_accepts_a_model_that_fits(tmp_path):
    r = run_aihost("-i", _inventory(tmp_path, 24, "ollama", "llama3.1:8b"), "inventory", "check")
    assert r.exit_code == 0, r.stderr


def test_accepted_cpu_offload_is_not_an_error():
    r = run_aihost("models", "fit", "llama3.1:70b", "--vram", "24", "--allow-cpu-offload")
    assert r.exit_code == 0, r.stderr
    assert "cpu-offload" in r.stdout
