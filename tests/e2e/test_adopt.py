"""`vm adopt`: a VM made by hand is refused by `vm up` until it is adopted after a diff."""

from __future__ import annotations

from typing import Any

from aihost_testing import run_aihost

VMID = 120
BOX = {"runtime": "none", "vmid": VMID}


def _api(sim, method: str, path: str, **params: Any) -> Any:
    import requests

    server = sim.server
    headers = {"Authorization": f"PVEAPIToken={server.token_id}={server.token_secret}"}
    send = {"params": params} if method == "GET" else {"data": params}
    response = requests.request(
        method,
        f"{server.url}/api2/json{path}",
        headers=headers,
        verify=str(server.cert_path),
        timeout=10,
        **send,
    )
    response.raise_for_status()
    return response.json()["data"]


def _hand_made(sim, name: str = "hand-box") -> None:
    """Clone the template through the API the way a user would, without the aihost tag."""
    _api(
        sim,
        "POST",
        "/nodes/pve1/qemu/9000/clone",
        newid=VMID,
        name=name,
        full=1,
        storage="local-lvm",
    )
    config = _api(sim, "GET", f"/nodes/pve1/qemu/{VMID}/config")
    assert "lock" not in config and "aihost" not in config.get("tags", "")


def _config(sim) -> dict[str, Any]:
    return dict(_api(sim, "GET", f"/nodes/pve1/qemu/{VMID}/config"))


def test_vm_up_refuses_a_hand_made_vm_and_points_at_adopt(sim, tmp_path):
    _hand_made(sim)
    inventory = sim.inventory(tmp_path / "inv.yaml", {"hand-box": BOX})
    before = len(sim.requests())
    result = run_aihost("-i", str(inventory), "vm", "up", "hand-box")
    assert result.exit_code == 4, result.stderr
    assert "not managed by aihost" in result.stderr
    assert f"aihost vm adopt hand-box --vmid {VMID}" in result.stderr
    assert sim.writes(before) == []


def test_adopt_without_yes_shows_the_diff_and_does_not_tag(sim, tmp_path):
    _hand_made(sim)
    inventory = sim.inventory(tmp_path / "inv.yaml", {"hand-box": BOX})
    before = len(sim.requests())
    result = run_aihost("-i", str(inventory), "vm", "adopt", "hand-box", "--vmid", str(VMID))
    assert result.exit_code == 2, result.stderr
    assert "cores: 2 -> 4" in result.stderr
    assert "memory: 2048 -> 16384" in result.stderr
    assert "not adopted" in result.stdout + result.stderr
    assert "--yes" in result.stdout + result.stderr
    assert sim.writes(before) == []
    assert "aihost" not in _config(sim).get("tags", "")


def test_adopt_asks_at_a_terminal_and_tags_only_on_yes(sim, tmp_path):
    _hand_made(sim)
    inventory = sim.inventory(tmp_path / "inv.yaml", {"hand-box": BOX})
    args = ("-i", str(inventory), "vm", "adopt", "hand-box", "--vmid", str(VMID))
    before = len(sim.requests())
    declined = run_aihost(*args, stdin="n\n")
    assert declined.exit_code == 0, declined.stderr
    assert "tag it 'aihost' so aihost manages it? [y/N]: " in declined.stderr
    assert "hand-box: VM 120 not adopted" in declined.stdout
    assert sim.writes(before) == []
    accepted = run_aihost(*args, stdin="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert "hand-box: VM 120 adopted" in accepted.stdout
    assert "aihost" in _config(sim)["tags"].split(";")


def test_adopt_with_yes_tags_it_and_vm_up_converges_it(sim, tmp_path):
    _hand_made(sim)
    inventory = sim.inventory(tmp_path / "inv.yaml", {"hand-box": BOX})
    result = run_aihost(
        "-i", str(inventory), "-o", "json", "vm", "adopt", "hand-box", "--vmid", str(VMID), "--yes"
    )
    assert result.exit_code == 0, result.stderr
    out = result.json()
    assert out["adopted"] is True
    assert {"key": "cores", "now": "2", "inventory": "4"} in out["differences"]
    config = _config(sim)
    assert "aihost" in config["tags"].split(";")
    assert config["cores"] == 2  # adopting only tags: nothing else changed
    up = run_aihost("-i", str(inventory), "vm", "up", "hand-box")
    assert up.exit_code == 0, up.stderr
    config = _config(sim)
    assert config["cores"] == 4 and config["memory"] == "16384"
    assert "aihost-generation: 1" in config["description"]
    again = run_aihost("-i", str(inventory), "vm", "up", "hand-box")
    assert again.exit_code == 0, again.stderr
    assert "no changes" in again.stdout


def test_adopting_twice_or_the_wrong_vm_is_refused(sim, tmp_path):
    _hand_made(sim)
    inventory = sim.inventory(
        tmp_path / "inv.yaml", {"hand-box": BOX, "other": {"runtime": "none"}}
    )
    assert (
        run_aihost(
            "-i", str(inventory), "vm", "adopt", "hand-box", "--vmid", str(VMID), "--yes"
        ).exit_code
        == 0
    )
    twice = run_aihost(
        "-i", str(inventory), "vm", "adopt", "hand-box", "--vmid", str(VMID), "--yes"
    )
    assert twice.exit_code == 4 and "already managed" in twice.stderr
    wrong = run_aihost("-i", str(inventory), "vm", "adopt", "other", "--vmid", "9000", "--yes")
    assert wrong.exit_code == 2 and "template" in wrong.stderr


def test_adopt_then_up_without_ssh_attaches_the_cidata_iso(sim, tmp_path):
    _hand_made(sim)
    inventory = sim.inventory(tmp_path / "inv.yaml", {"hand-box": BOX}, host={"ssh": None})
    adopted = run_aihost(
        "-i", str(inventory), "-o", "json", "vm", "adopt", "hand-box", "--vmid", str(VMID), "--yes"
    )
    assert adopted.exit_code == 0, adopted.stderr
    keys = {d["key"] for d in adopted.json()["differences"]}
    assert not keys & {"cicustom", "ciuser", "ipconfig0", "ide2"}
    up = run_aihost("-i", str(inventory), "vm", "up", "hand-box")
    assert up.exit_code == 0, up.stderr
    assert ":iso/aihost-hand-box-cidata-" in _config(sim)["ide2"]
