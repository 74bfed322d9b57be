"""No user password at rest in plain text: every byte aihost uploads or the simulator
stores (cidata ISO, snippets, state.json, task logs) is searched for it after `vm up`."""

from __future__ import annotations

import pytest
from aihost_testing import run_aihost

from provision.cloudinit.passwd import hash_password

PASSWORD = "Correct-Horse-7f3a91"


@pytest.mark.parametrize("delivery", ["iso", "snippet"])
def test_user_password_is_stored_only_as_a_sha512_crypt_hash(sim, tmp_path, monkeypatch,
                                                              delivery):
    monkeypatch.setenv("AIHOST_TEST_USER_PW", PASSWORD)
    vm = {"gpu": "rtx4090", "models": ["llama3.1:8b"],
          "user": {"name": "alice", "password": {"secret_env": "AIHOST_TEST_USER_PW"}}}
    host = {"cloudinit_delivery": delivery}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": vm}, host=host)
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    stored = [p for p in sim.state_dir.rglob("*") if p.is_file()]
    blobs = b"".join(p.read_bytes() for p in stored)
    assert PASSWORD.encode() not in blobs
    assert hash_password("llm-box", "alice", PASSWORD).encode() in blobs  # what it got
    assert PASSWORD not in result.stdout + result.stderr
