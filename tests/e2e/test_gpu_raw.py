"""GPUs given by raw `pci:` address: root@pam password login, lease in the node's notes."""

from __future__ import annotations

from test_gpu_swap import aihost, api, holders, vms, world

RAW = {"gpu0": {"host": "pve1", "pci": "0000:01:00", "vram_gb": 24}}
ENV = "AIHOST_TEST_ROOT_PASSWORD"


def test_raw_gpu_swap_with_root_password_keeps_the_lease_in_the_node_notes(
    sim, tmp_path, monkeypatch
):
    monkeypatch.setenv(ENV, sim.server.root_password)
    host = {"token": None, "password": {"user": "root@pam", "secret_env": ENV}}
    inventory = world(sim, tmp_path, gpus=RAW, host=host, gpu="gpu0")
    assert holders(sim, "0000:01:00") == {"llm-box": "running"}

    result = aihost(inventory, "-o", "json", "gpu", "swap", "gpu0", "--to", "image-box")
    assert result.exit_code == 0, result.stderr
    assert result.json()["outcome"] == "swapped"
    assert holders(sim, "0000:01:00") == {"image-box": "running"}
    notes = str(api(sim, "GET", "/nodes/pve1/config").get("description") or "")
    assert f'aihost-lease gpu0: {{"holder":{vms(sim)["image-box"]["vmid"]}' in notes

    row = aihost(inventory, "-o", "json", "gpu", "list").json()[0]
    assert (row["gpu"], row["holder"], row["device"]) == ("gpu0", "image-box", "pci 0000:01:00")


def test_raw_gpu_with_only_a_token_is_refused_before_anything_is_written(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": {"gpu": "gpu0"}}, gpus=RAW)
    before = len(sim.requests())
    result = aihost(inventory, "gpu", "swap", "gpu0", "--to", "llm-box")
    assert result.exit_code == 2
    assert "root@pam" in result.stderr
    assert sim.writes(before) == []
