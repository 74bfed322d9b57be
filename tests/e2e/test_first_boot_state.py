"""`vm up` follows the guest's first boot through its state file (agent file-read): each
phase is shown while it waits, and a failed phase is reported with the guest's own error
instead of a timeout."""

from __future__ import annotations

from aihost_testing import run_aihost


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("aihost: error:")]


def test_failed_models_phase_is_reported_with_the_guests_error(sim, tmp_path):
    spec = {
        "gpu": "rtx4090",
        "runtime": "llamacpp",
        "models": [],
        "llamacpp": {"model_path": "/srv/models/m.gguf"},
    }
    inventory = sim.inventory(tmp_path / "inv.yaml", {"gguf-box": spec})
    result = run_aihost("-i", str(inventory), "vm", "up", "gguf-box")
    assert result.exit_code == 3, result.stderr
    (line,) = _error_lines(result)
    assert "first boot failed in the models phase" in line
    assert "the GGUF model /srv/models/m.gguf is not in the guest" in line
    assert "first boot: models failed" in result.stderr
    assert "timed out" not in result.stderr


def test_phases_are_shown_and_a_good_first_boot_verifies(sim, tmp_path):
    spec = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": spec})
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert result.exit_code == 0, result.stderr
    assert "llm-box: first boot: done ok" in result.stderr
    reads = [r for r in sim.requests() if r["path"].endswith("/agent/file-read")]
    assert reads and all(r["method"] == "GET" for r in reads)
