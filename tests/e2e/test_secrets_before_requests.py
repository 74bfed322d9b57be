"""A secret `vm up` needs is read before the first request: a missing one is exit 2 and
the simulated Proxmox sees nothing (not even the cluster read)."""

from __future__ import annotations

from aihost_testing import run_aihost

VLLM = {
    "gpu": "rtx4090",
    "runtime": "vllm",
    "models": ["Qwen/Qwen2.5-7B-Instruct"],
    "hf_token": {"secret_env": "AIHOST_TEST_HF_UNSET", "store_in_user_data": True},
}


def test_missing_hf_token_stops_vm_up_before_any_request(sim, tmp_path, monkeypatch):
    monkeypatch.delenv("AIHOST_TEST_HF_UNSET", raising=False)
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": VLLM})
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.splitlines() == [
        "aihost: error: environment variable AIHOST_TEST_HF_UNSET (vms.llm-box.hf_token, the "
        "Hugging Face token) is not set (export AIHOST_TEST_HF_UNSET=... before running aihost)"
    ]
    assert sim.requests() == []


def test_missing_user_password_stops_vm_up_before_any_request(sim, tmp_path):
    vm = {
        "gpu": "rtx4090",
        "models": ["llama3.1:8b"],
        "user": {"name": "alice", "password": {"secret_file": str(tmp_path / "nope")}},
    }
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": vm})
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("aihost: error: cannot read vms.llm-box.user.password from ")
    assert sim.requests() == []
