"""The end of `vm up` (also on "no changes") and `vm status` show the VM's address, the
endpoint and a way in that works for that VM: no `ssh` advice for a VM without a login."""

from __future__ import annotations

import json

from aihost_testing import run_aihost

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0b3RoZXJlYWxrZXlub3RyZWFsbHlrZXkxMjM0NTY3 me@laptop"


def test_a_vm_without_a_login_is_reached_through_the_console_not_ssh(sim, tmp_path):
    inventory = str(
        sim.inventory(
            tmp_path / "inv.yaml",
            {"box": {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}},
        )
    )
    first = run_aihost("-i", inventory, "-o", "json", "vm", "up", "box")
    assert first.exit_code == 0, first.stderr
    made = json.loads(first.stdout)
    assert made["address"] and made["endpoint"] == "http://127.0.0.1:11434 inside the VM"
    assert not made["way_in"].startswith("ssh") and "Proxmox console of VM" in made["way_in"]

    again = run_aihost("-i", inventory, "-o", "json", "vm", "up", "box")
    data = json.loads(again.stdout)
    assert data["plan"]["actions"] == [] or not any(a["writes"] for a in data["plan"]["actions"])
    assert data["address"] == made["address"] and data["endpoint"] == made["endpoint"]

    status = run_aihost("-i", inventory, "vm", "status", "box")
    assert status.exit_code == 0, status.stderr
    assert f"address:  {made['address']}" in status.stdout
    assert "gpu:      rtx4090" in status.stdout and "None" not in status.stdout
    assert "['" not in status.stdout


def test_a_vm_with_a_key_gets_the_ssh_tunnel_to_its_address(sim, tmp_path):
    vm = {
        "gpu": "rtx4090",
        "runtime": "ollama",
        "models": ["llama3.1:8b"],
        "user": {"name": "alice", "ssh_keys": [KEY]},
    }
    inventory = str(sim.inventory(tmp_path / "inv.yaml", {"box": vm}))
    result = run_aihost("-i", inventory, "vm", "up", "box")
    assert result.exit_code == 0, result.stderr
    address = next(
        line.split(": ", 1)[1]
        for line in result.stdout.splitlines()
        if line.strip().startswith("address:")
    )
    assert f"way in: ssh -L 11434:127.0.0.1:11434 alice@{address} (your key)" in result.stdout
