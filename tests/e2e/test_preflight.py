"""Pre-flight: every missing privilege, storage content type and auth problem, before a write."""

from __future__ import annotations

import pytest
from aihost_testing import run_aihost

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}
PLAIN = {"runtime": "none"}


def _token(sim, tmp_path, token_id: str) -> dict:
    secret = tmp_path / f"secret-{token_id.split('!')[1]}"
    secret.write_text(sim.server.secret_for(token_id) + "\n")
    return {"token": {"id": token_id, "secret_file": str(secret)}}


def _up(inventory, *args: str):
    return run_aihost("-i", str(inventory), "vm", "up", *args)


@pytest.mark.parametrize(
    ("token", "vm", "ssh", "expected"),
    [
        ("aihost@pve!nopower", LLM, True, ["VM.PowerMgmt"]),
        ("aihost@pve!nomapping", LLM, True, ["Mapping.Use", "Mapping.Modify"]),
        ("aihost@pve!notemplate", PLAIN, False, ["Datastore.AllocateTemplate on /storage/local"]),
        (
            "aihost@pve!readonly",
            LLM,
            True,
            [
                "VM.Clone",
                "VM.Allocate",
                "Datastore.AllocateSpace",
                "VM.Config.HWType",
                "VM.Config.CPU",
                "VM.Config.Memory",
                "VM.Config.Disk",
                "VM.Config.Options",
                "VM.Config.Cloudinit",
                "VM.PowerMgmt",
                "Mapping.Modify",
            ],
        ),
    ],
)
def test_a_token_missing_privileges_gets_all_of_them_listed_and_nothing_is_written(
    sim, tmp_path, token, vm, ssh, expected
):
    host = _token(sim, tmp_path, token)
    if not ssh:
        host["ssh"] = None
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": vm}, host=host)
    result = _up(inventory, "llm-box")
    assert result.exit_code == 2, result.stderr
    assert "nothing was changed" in result.stderr
    for item in expected:
        assert item in result.stderr, (item, result.stderr)
    assert "pveum role add" in result.stderr
    assert "pveum acl modify" in result.stderr and f"--tokens '{token}'" in result.stderr
    assert sim.writes() == []
    assert not [r for r in sim.requests() if "/agent/" in r["path"]]


def test_nopower_lists_only_the_power_privilege(sim, tmp_path):
    host = _token(sim, tmp_path, "aihost@pve!nopower")
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=host)
    result = _up(inventory, "llm-box")
    assert result.exit_code == 2
    problems = [line for line in result.stderr.splitlines() if "pre-flight pve1: " in line]
    assert problems == ["pre-flight pve1: missing VM.PowerMgmt on /vms (start the VM)"], (
        result.stderr
    )


def test_a_token_with_every_privilege_passes_after_reading_its_permissions(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    result = _up(inventory, "llm-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    assert any(r["path"].endswith("/access/permissions") for r in sim.requests())


def test_a_snippet_storage_without_snippets_content_is_named_with_the_pvesm_fix(sim, tmp_path):
    host = {"storage": {"snippets": "local-lvm"}}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=host)
    result = _up(inventory, "llm-box")
    assert result.exit_code == 2, result.stderr
    assert "storage 'local-lvm' does not allow content 'snippets'" in result.stderr
    assert "pvesm set local-lvm --content images,rootdir,snippets" in result.stderr
    assert sim.writes() == []


def test_an_unknown_snippet_storage_is_named_by_the_preflight(sim, tmp_path):
    """pve-storage Status.pm index answers an unknown `storage=` with a 400 "No such
    storage."; aihost still names the storage instead of failing on that answer."""
    host = {"storage": {"snippets": "nosuch"}}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=host)
    result = _up(inventory, "llm-box")
    assert result.exit_code == 2, result.stderr
    assert "storage 'nosuch' does not exist on node pve1" in result.stderr
    assert sim.writes() == []


def test_an_iso_storage_without_iso_content_is_named(sim, tmp_path):
    host = {"ssh": None, "storage": {"iso": "local-lvm"}}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": PLAIN}, host=host)
    result = _up(inventory, "llm-box")
    assert result.exit_code == 2, result.stderr
    assert "storage 'local-lvm' does not allow content 'iso'" in result.stderr
    assert "pvesm set local-lvm --content images,iso,rootdir" in result.stderr
    assert sim.writes() == []


def test_raw_pci_with_a_token_is_refused_before_any_request(sim, tmp_path):
    gpus = {"rtx4090": {"host": "pve1", "pci": "0000:01:00", "vram_gb": 24}}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, gpus=gpus)
    before = len(sim.requests())
    result = _up(inventory, "llm-box")
    assert result.exit_code == 2, result.stderr
    assert "raw PCI" in result.stderr and "root@pam" in result.stderr
    assert "aihost gpu map rtx4090" in result.stderr
    assert sim.requests(before) == []


def test_host_check_includes_the_preflight(sim, tmp_path):
    host = _token(sim, tmp_path, "aihost@pve!readonly")
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=host)
    result = run_aihost("-i", str(inventory), "host", "check")
    assert result.exit_code != 0
    assert "VM.Allocate" in result.stdout + result.stderr
    assert sim.writes() == []
