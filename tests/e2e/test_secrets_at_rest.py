"""No user password at rest in plain text: every byte aihost uploads or the simulator
stores (cidata ISO, snippets, state.json, task logs) is searched for it after `vm up`."""

from __future__ import annotations

import pytest
from aihost_testing import run_aihost

from provision.cloudinit.passwd import hash_password

PASSWORD = "Correct-Horse-7f3a91"


@pytest.mark.parametrize("delivery", ["iso", "snippet"])
def test_user_password_is_stored_only_as_a_sha512_crypt_hash(sim, tmp_path, monkeypatch, delivery):
    monkeypatch.setenv("AIHOST_TEST_USER_PW", PASSWORD)
    vm = {
        "gpu": "rtx4090",
        "models": ["llama3.1:8b"],
        "user": {"name": "alice", "password": {"secret_env": "AIHOST_TEST_USER_PW"}},
    }
    host = {"cloudinit_delivery": delivery}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": vm}, host=host)
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    stored = [p for p in sim.state_dir.rglob("*") if p.is_file()]
    blobs = b"".join(p.read_bytes() for p in stored)
    assert PASSWORD.encode() not in blobs
    assert hash_password("llm-box", "alice", PASSWORD).encode() in blobs  # what it got
    assert PASSWORD not in result.stdout + result.stderr


def test_a_hugging_face_token_is_stored_only_after_the_explicit_opt_in(sim, tmp_path, monkeypatch):
    token = "hf_NotReallyATokenButLongEnough42"
    monkeypatch.setenv("AIHOST_TEST_HF", token)
    vm = {
        "gpu": "rtx4090",
        "runtime": "vllm",
        "models": ["Qwen/Qwen2.5-7B-Instruct"],
        "hf_token": {"secret_env": "AIHOST_TEST_HF"},
    }
    refused = sim.inventory(tmp_path / "refused.yaml", {"llm-box": vm})
    before = len(sim.requests())
    result = run_aihost("-i", str(refused), "vm", "up", "llm-box", "--no-wait")
    assert result.exit_code == 2 and "store_in_user_data: true" in result.stderr
    assert sim.requests(before) == []
    stored = b"".join(p.read_bytes() for p in sim.state_dir.rglob("*") if p.is_file())
    assert token.encode() not in stored

    vm["hf_token"] = {"secret_env": "AIHOST_TEST_HF", "store_in_user_data": True}
    accepted = sim.inventory(tmp_path / "accepted.yaml", {"llm-box": vm})
    assert run_aihost("-i", str(accepted), "vm", "up", "llm-box", "--no-wait").exit_code == 0
    stored = b"".join(p.read_bytes() for p in sim.state_dir.rglob("*") if p.is_file())
    assert token.encode() in stored  # opted in: in the user-data, as documented
