"""`aihost host check` and `aihost gpu map` against the simulator's hardware listings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aihost_testing import run_aihost, schema_validator

TWO_NODE = Path(__file__).resolve().parents[2] / "provision" / "sim" / "fixtures" / "two-node.yaml"


def _check(inventory: Path, *args: str) -> Any:
    return run_aihost("-i", str(inventory), "-o", "json", "host", "check", *args)


def _reports(result: Any) -> list[dict[str, Any]]:
    """The host reports of the one JSON document on stdout."""
    return list(json.loads(result.stdout)["hosts"])


def _findings(result: Any, host: str) -> dict[str, dict[str, Any]]:
    report = {r["host"]: r for r in _reports(result)}[host]
    return {f["check"]: f for f in report["findings"]}


def test_gpu_map_creates_then_is_unchanged_and_the_default_host_passes(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {})
    before = _check(inventory)
    assert before.exit_code == 0, before.stdout + before.stderr  # vm up would create it
    missing = _findings(before, "pve1")["rtx4090: mapping"]
    assert missing["ok"] and "no entry for node pve1 yet" in missing["detail"]
    assert missing["fix"] == "aihost gpu map rtx4090"

    created = run_aihost("-i", str(inventory), "-o", "json", "gpu", "map", "rtx4090")
    assert created.exit_code == 0, created.stderr
    assert created.json()["action"] == "created"
    assert created.json()["map"] == (
        "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"
    )
    writes = len(sim.writes())
    again = run_aihost("-i", str(inventory), "-o", "json", "gpu", "map", "rtx4090")
    assert again.json()["action"] == "unchanged"
    assert len(sim.writes()) == writes
    assert run_aihost("-i", str(inventory), "gpu", "map", "rtx3060").exit_code == 0

    result = _check(inventory)
    assert result.exit_code == 0, result.stdout + result.stderr
    findings = _findings(result, "pve1")
    assert all(f["ok"] for f in findings.values()), findings
    assert findings["rtx4090: IOMMU"]["detail"] == "IOMMU group 12"
    assert "0000:01:00.0 driver" in findings  # the SSH checks ran
    text = run_aihost("-i", str(inventory), "host", "check", "pve1")
    assert "pve1 (node pve1): OK" in text.stdout


def test_a_mapping_that_does_not_match_the_hardware_fails_until_gpu_map(sim, tmp_path):
    inventory = sim.inventory(
        tmp_path / "inv.yaml",
        {},
        gpus={"rtx4090": {"host": "pve1", "mapping": "rtx4090", "vram_gb": 24}},
    )
    from test_gpu_swap import api

    api(
        sim,
        "POST",
        "/cluster/mapping/pci",
        id="rtx4090",
        map="node=pve1,path=0000:01:00,id=10de:2204,iommugroup=12",
    )
    result = _check(inventory)
    assert result.exit_code == 2
    finding = _findings(result, "pve1")["rtx4090: mapping"]
    assert not finding["ok"] and "id=10de:2684" in finding["detail"]
    assert finding["fix"] == "aihost gpu map rtx4090"

    updated = run_aihost("-i", str(inventory), "-o", "json", "gpu", "map", "rtx4090")
    assert updated.json()["action"] == "updated"
    assert _check(inventory).exit_code == 0


@pytest.fixture
def two_node(tmp_path_factory, monkeypatch) -> Iterator[tuple[Any, Path]]:
    """The two-node fixture (plus pve3 without IOMMU) and an inventory with a raw GPU per
    node (root@pam password login)."""
    from provision.sim.server import SimServer

    state = tmp_path_factory.mktemp("sim2")
    server = SimServer(
        state, TWO_NODE, durations={}, sftp_port=None, validator=schema_validator()
    ).start()
    monkeypatch.setenv("AIHOST_TEST_ROOT_PASSWORD", server.root_password)
    host = {
        "api": server.url,
        "tls": {"fingerprint": server.fingerprint},
        "password": {"user": "root@pam", "secret_env": "AIHOST_TEST_ROOT_PASSWORD"},
    }
    data = {
        "hosts": {n: {**host, "node": n} for n in ("pve1", "pve2", "pve3")},
        "gpus": {
            "rtx4090": {"host": "pve1", "pci": "0000:01:00", "vram_gb": 24},
            "rtx3060": {"host": "pve2", "pci": "0000:0a:00", "vram_gb": 12},
            "gtx1080": {"host": "pve3", "pci": "0000:01:00", "vram_gb": 8},
        },
    }
    inventory = state / "inv.yaml"
    inventory.write_text(yaml.safe_dump(data))
    try:
        yield server, inventory
    finally:
        violations = server.violations()
        server.stop()
        assert not violations


def test_node_without_iommu_and_gpu_sharing_its_group(two_node):
    _, inventory = two_node
    result = _check(inventory)
    assert result.exit_code == 2, result.stdout + result.stderr
    ok = {r["host"]: r["ok"] for r in _reports(result)}
    assert ok == {"pve1": True, "pve2": False, "pve3": False}

    iommu = _findings(result, "pve3")["gtx1080: IOMMU"]
    assert not iommu["ok"] and "group -1" in iommu["detail"]
    assert "intel_iommu=on" in iommu["fix"] and "reboot" in iommu["fix"]

    group = _findings(result, "pve2")["rtx3060: IOMMU group"]
    assert not group["ok"]
    assert "0000:0b:00.0" in group["detail"] and "USB" in group["detail"]
    assert "0000:0a:00.1" not in group["detail"]  # its own audio function is fine

    one = _check(inventory, "pve1")
    assert one.exit_code == 0, one.stdout
    text = run_aihost("-i", str(inventory), "host", "check", "pve3")
    assert "NOT READY" in text.stdout and "fix: enable VT-d/AMD-Vi" in text.stdout


def test_failed_check_prints_exactly_one_json_document(sim, tmp_path):
    inventory = sim.inventory(
        tmp_path / "inv.yaml",
        {},
        gpus={"rtx4090": {"host": "pve1", "mapping": "rtx4090", "vram_gb": 24}},
    )
    from test_gpu_swap import api

    api(
        sim,
        "POST",
        "/cluster/mapping/pci",
        id="rtx4090",
        map="node=pve1,path=0000:01:00,id=10de:2204,iommugroup=12",
    )
    result = _check(inventory)
    assert result.exit_code == 2
    data = json.loads(result.stdout)  # one document, not a report then an error object
    assert data["ok"] is False and data["hosts"][0]["ok"] is False


def test_demo_host_check_text_json_and_exit_code_agree(fast_demo):
    """A newcomer's demo, before and after `vm up`: the verdicts printed, the JSON and the
    exit code say the same thing, and a GPU shared by two VMs is a note, not a failure."""
    from aihost_testing import INVENTORIES

    demo = str(INVENTORIES / "demo.yaml")
    for _ in ("fresh", "after vm up"):
        text = run_aihost("-i", demo, "host", "check")
        data = json.loads(run_aihost("-i", demo, "-o", "json", "host", "check").stdout)
        assert text.exit_code == (0 if data["ok"] else 2), text.stdout + text.stderr
        assert ("NOT READY" in text.stdout) == (not data["ok"])
        assert data["ok"] == (all(h["ok"] for h in data["hosts"]) and data["vms"]["ok"])
        assert data["ok"], text.stdout + text.stderr
        assert run_aihost("-i", demo, "vm", "up", "llm-box").exit_code == 0
    notes = json.loads(run_aihost("-i", demo, "-o", "json", "host", "check").stdout)["vms"]
    assert any("image-box" in note and "rtx4090" in note for note in notes["notes"])


def test_gpu_map_refuses_another_model_or_a_card_another_mapping_names(sim, tmp_path):
    gpus = {
        "rtx4090": {
            "host": "pve1",
            "mapping": "rtx4090",
            "vram_gb": 24,
            "model": "GeForce RTX 4090",
        },
        "rtx3060": {"host": "pve1", "mapping": "rtx3060", "vram_gb": 12},
    }
    inventory = str(sim.inventory(tmp_path / "inv.yaml", {}, gpus=gpus))
    assert run_aihost("-i", inventory, "gpu", "map", "rtx3060").exit_code == 0
    before = len(sim.writes())
    wrong_model = run_aihost("-i", inventory, "gpu", "map", "rtx4090", "--pci", "0000:02:00")
    assert wrong_model.exit_code == 2
    assert "not GPU rtx4090's model 'GeForce RTX 4090'" in wrong_model.stderr
    gpus["rtx4090"].pop("model")
    inventory = str(sim.inventory(tmp_path / "inv2.yaml", {}, gpus=gpus))
    taken = run_aihost("-i", inventory, "gpu", "map", "rtx4090", "--pci", "0000:02:00")
    assert taken.exit_code == 2
    assert "0000:02:00 on pve1 is already mapped as 'rtx3060'" in taken.stderr
    assert len(sim.writes()) == before
    forced = run_aihost("-i", inventory, "gpu", "map", "rtx4090", "--pci", "0000:02:00", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert run_aihost("-i", inventory, "gpu", "map", "rtx4090").exit_code == 0


def test_host_check_fails_a_mapping_that_points_at_another_model(sim, tmp_path):
    gpus = {
        "rtx4090": {
            "host": "pve1",
            "mapping": "rtx4090",
            "vram_gb": 24,
            "model": "GeForce RTX 4090",
        }
    }
    inventory = sim.inventory(tmp_path / "inv.yaml", {}, gpus=gpus)
    assert (
        run_aihost(
            "-i", str(inventory), "gpu", "map", "rtx4090", "--pci", "0000:02:00", "--force"
        ).exit_code
        == 0
    )
    result = _check(inventory)
    assert result.exit_code == 2
    finding = _findings(result, "pve1")["rtx4090: model"]
    assert not finding["ok"] and "RTX 3060" in finding["detail"]
