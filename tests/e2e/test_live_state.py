"""aihost decides from live VM facts, never from /cluster/resources' lagging ones.

On Proxmox a VM's name and status in /cluster/resources are pvestatd's last broadcast
(about every 10 s): a VM made a moment ago has no name there and status "unknown". The
`sim` fixture broadcasts once at its start and never again; the 10 s case is the
simulator's default (as in `api: sim`).
"""

from __future__ import annotations

import pytest
from aihost_testing import run_aihost

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}
PLAIN = {"runtime": "none"}


def _aihost(inventory, *args: str):
    return run_aihost("-i", str(inventory), "-o", "json", *args)


def _vms_named(sim, name: str) -> list[int]:
    import requests

    server = sim.server
    reply = requests.get(
        f"{server.url}/api2/json/nodes/pve1/qemu",
        timeout=10,
        verify=str(server.cert_path),
        headers={"Authorization": f"PVEAPIToken={server.token_id}={server.token_secret}"},
    )
    return sorted(r["vmid"] for r in reply.json()["data"] if r.get("name") == name)


@pytest.mark.parametrize("interval", [None, 10.0], ids=["never", "every-10s"])
@pytest.mark.parametrize("spec", [PLAIN, LLM], ids=["plain", "gpu"])
def test_vm_up_twice_in_a_row_makes_one_vm(sim, tmp_path, spec, interval):
    if interval is not None:
        sim.control("durations", {"pvestatd": interval})
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": spec})
    first = _aihost(inventory, "vm", "up", "box")
    assert first.exit_code == 0, first.stderr
    again = _aihost(inventory, "vm", "up", "box")
    assert again.exit_code == 0, again.stderr
    assert again.json()["applied"] == [] and again.json()["vmid"] == first.json()["vmid"]
    assert _vms_named(sim, "box") == [first.json()["vmid"]]


def test_vm_list_and_status_right_after_vm_up_show_the_vm_running(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM, "spare": PLAIN})
    up = _aihost(inventory, "vm", "up", "llm-box")
    assert up.exit_code == 0, up.stderr
    vmid = up.json()["vmid"]
    listing = _aihost(inventory, "vm", "list")
    assert listing.exit_code == 0, listing.stderr
    rows = {row["vm"]: row for row in listing.json()}
    assert (rows["llm-box"]["vmid"], rows["llm-box"]["status"]) == (vmid, "running")
    assert rows["spare"]["status"] == "absent"
    status = _aihost(inventory, "vm", "status", "llm-box")
    assert status.exit_code == 0, status.stderr
    assert (status.json()["vmid"], status.json()["status"]) == (vmid, "running")
    gpus = {row["gpu"]: row for row in _aihost(inventory, "gpu", "list").json()}
    assert gpus["rtx4090"]["holder"] == "llm-box" and gpus["rtx4090"]["holder_running"]


def test_a_stopped_vm_is_seen_stopped_and_started_again(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": PLAIN})
    assert _aihost(inventory, "vm", "up", "box").exit_code == 0
    down = _aihost(inventory, "vm", "down", "box")
    assert down.exit_code == 0, down.stderr
    assert _aihost(inventory, "vm", "status", "box").json()["status"] == "stopped"
    up = _aihost(inventory, "vm", "up", "box")
    assert up.exit_code == 0, up.stderr
    assert up.json()["applied"] == ["start"]
    assert _aihost(inventory, "vm", "status", "box").json()["status"] == "running"


def test_destroy_then_up_reuses_the_vmid_whose_old_line_still_names_the_old_vm(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": PLAIN, "other": PLAIN})
    assert _aihost(inventory, "vm", "up", "box").exit_code == 0
    sim.control("durations", {"pvestatd": 0})  # one broadcast now: the line names "box"
    assert _aihost(inventory, "vm", "status", "box").exit_code == 0
    sim.control("durations", {"pvestatd": 1e9})
    destroyed = _aihost(inventory, "vm", "destroy", "box", "--yes")
    assert destroyed.exit_code == 0, destroyed.stderr
    other = _aihost(inventory, "vm", "up", "other")  # gets the freed vmid
    assert other.exit_code == 0, other.stderr
    assert other.json()["vmid"] == destroyed.json()["vmid"]
    listing = {row["vm"]: row for row in _aihost(inventory, "vm", "list").json()}
    assert listing["box"]["status"] == "absent"
    assert listing["other"]["status"] == "running"


@pytest.fixture
def two_node(tmp_path_factory):
    """The two-node fixture, pvestatd broadcasting once at the start, token auth."""
    from aihost_testing import schema_validator

    from provision.sim.fixture import DEFAULT_FIXTURE
    from provision.sim.server import SimServer

    state = tmp_path_factory.mktemp("sim2")
    server = SimServer(
        state,
        DEFAULT_FIXTURE.parent / "two-node.yaml",
        sftp_port=None,
        durations={"pvestatd": 1e9},
        validator=schema_validator(),
    ).start()
    token = state / "token"
    token.write_text(server.token_secret + "\n")
    try:
        yield server, token
    finally:
        violations = server.violations()
        server.stop()
        assert not violations


def test_no_second_vm_while_an_offline_node_holds_vms_of_unknown_name(two_node, tmp_path):
    import requests
    import yaml

    server, token = two_node
    auth = {"Authorization": f"PVEAPIToken={server.token_id}={server.token_secret}"}

    def post(path: str, **kw):
        reply = requests.post(
            f"{server.url}{path}", headers=auth, timeout=10, verify=str(server.cert_path), **kw
        )
        assert reply.status_code == 200, reply.text

    post("/api2/json/nodes/pve2/qemu", data={"vmid": 150, "name": "box", "tags": "aihost"})
    post("/_sim/faults", json={"kind": "node_offline", "node": "pve2"})
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "hosts": {
                    "pve1": {
                        "api": server.url,
                        "tls": {"fingerprint": server.fingerprint},
                        "token": {"id": server.token_id, "secret_file": str(token)},
                    }
                },
                "gpus": {},
                "defaults": {"vm": {"host": "pve1", "template": "ubuntu-2404-cloud"}},
                "vms": {"box": PLAIN},
            }
        )
    )
    since = len(server.request_log())
    result = _aihost(inventory, "vm", "up", "box")
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "node pve2 does not answer and holds VM(s) 150" in result.stderr
    assert [r for r in server.request_log()[since:] if r["method"] != "GET"] == []
