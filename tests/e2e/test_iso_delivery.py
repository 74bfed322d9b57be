"""cloud-init delivered as an uploaded NoCloud ISO: a token and no SSH settings at all."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml
from aihost_testing import run_aihost

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}
NO_SSH = {"ssh": None}


def _iso_files(sim, name: str) -> list:
    folder = sim.state_dir / "storage" / "local" / "template" / "iso"
    return sorted(folder.glob(f"aihost-{name}-cidata-*.iso")) if folder.is_dir() else []


def _isoinfo() -> str:
    path = shutil.which("isoinfo")
    if path is None:
        if os.environ.get("AIHOST_REQUIRE_TOOLS") == "1":
            pytest.fail("isoinfo (genisoimage) is missing and AIHOST_REQUIRE_TOOLS=1")
        pytest.skip("isoinfo (Debian's genisoimage) is not installed")
    return path


def _read_with_isoinfo(iso, name: str) -> str:
    out = subprocess.run(
        [_isoinfo(), "-i", str(iso), "-R", "-x", f"/{name}"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return out.stdout.decode()


def _agent(sim, vmid: int, *argv: str) -> str:
    """Run a program in the simulated guest through the agent API, return its stdout."""
    import requests

    server = sim.server
    headers = {"Authorization": f"PVEAPIToken={server.token_id}={server.token_secret}"}
    base = f"{server.url}/api2/json/nodes/pve1/qemu/{vmid}/agent"
    data = [("command", a) for a in argv]
    pid = requests.post(
        f"{base}/exec", data=data, headers=headers, verify=str(server.cert_path), timeout=10
    ).json()["data"]["pid"]
    status = requests.get(
        f"{base}/exec-status",
        params={"pid": pid},
        headers=headers,
        verify=str(server.cert_path),
        timeout=10,
    ).json()["data"]
    return str(status.get("out-data", ""))


def test_vm_up_with_a_token_and_no_ssh_delivers_cloud_init_as_an_iso(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=NO_SSH)
    result = run_aihost("-i", str(inventory), "-o", "json", "vm", "up", "llm-box")
    assert result.exit_code == 0, result.stderr
    out = result.json()
    assert "upload-iso" in out["applied"]
    assert out["guest"]["gpus"] and "RTX 4090" in out["guest"]["gpus"][0]["name"]
    assert "llama3.1:8b" in out["guest"]["models"]
    uploads = [r for r in sim.requests() if r["path"].endswith("/storage/local/upload")]
    assert len(uploads) == 1
    isos = _iso_files(sim, "llm-box")
    assert len(isos) == 1
    # no snippets and no cicustom: the guest saw the ISO's files
    assert not (
        sim.state_dir / "storage" / "local" / "snippets" / "aihost-llm-box-user.yaml"
    ).exists()
    configs = [r for r in sim.requests() if r["path"].endswith("/config") and r["method"] == "POST"]
    assert configs and all("cicustom" not in r.get("params", {}) for r in configs)
    vmid = out["vmid"]
    assert _agent(sim, vmid, "cloud-init", "query", "instance-id").strip() == "aihost-llm-box-g1"


def test_the_uploaded_iso_reads_back_with_isoinfo(sim, tmp_path):
    isoinfo = _isoinfo()
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=NO_SSH)
    assert run_aihost("-i", str(inventory), "vm", "up", "llm-box", "--no-wait").exit_code == 0
    (iso,) = _iso_files(sim, "llm-box")
    header = subprocess.run(
        [isoinfo, "-d", "-i", str(iso)], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert "Volume id: cidata" in header
    listing = subprocess.run(
        [isoinfo, "-R", "-f", "-i", str(iso)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    assert {"/user-data", "/meta-data"} <= set(listing)
    user_data = _read_with_isoinfo(iso, "user-data")
    assert user_data.startswith("#cloud-config\n")
    parsed = yaml.safe_load(user_data)
    assert isinstance(parsed, dict) and parsed.get("runcmd")
    meta = yaml.safe_load(_read_with_isoinfo(iso, "meta-data"))
    assert meta == {"instance-id": "aihost-llm-box-g1", "local-hostname": "llm-box"}


def test_rerun_uploads_nothing_and_writes_nothing(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=NO_SSH)
    assert run_aihost("-i", str(inventory), "vm", "up", "llm-box").exit_code == 0
    before = len(sim.requests())
    again = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert again.exit_code == 0, again.stderr
    assert "no changes" in again.stdout
    assert sim.writes(before) == []
    assert len(_iso_files(sim, "llm-box")) == 1


def test_an_edit_keeps_the_attached_iso_until_reprovision_which_replaces_it(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=NO_SSH)
    assert run_aihost("-i", str(inventory), "vm", "up", "llm-box").exit_code == 0
    (first,) = _iso_files(sim, "llm-box")
    models = ["llama3.1:8b", "qwen2.5:7b"]
    sim.inventory(inventory, {"llm-box": {**LLM, "models": models}}, host=NO_SSH)
    before = len(sim.requests())
    held = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert held.exit_code == 0, held.stderr
    assert "user-data changed: takes effect on re-provision" in held.stderr
    assert sim.writes(before) == []  # no upload, no config write, no restart
    assert _iso_files(sim, "llm-box") == [first]
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box", "--reprovision")
    assert result.exit_code == 0, result.stderr
    (second,) = _iso_files(sim, "llm-box")
    assert second.name != first.name  # the old ISO was removed after the restart


def test_destroy_removes_the_iso(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=NO_SSH)
    assert run_aihost("-i", str(inventory), "vm", "up", "llm-box", "--no-wait").exit_code == 0
    assert _iso_files(sim, "llm-box")
    result = run_aihost("-i", str(inventory), "vm", "destroy", "llm-box", "--yes")
    assert result.exit_code == 0, result.stderr
    assert _iso_files(sim, "llm-box") == []


def test_cloudinit_delivery_snippet_without_ssh_is_refused_before_any_write(sim, tmp_path):
    host = {"ssh": None, "cloudinit_delivery": "snippet"}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=host)
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert result.exit_code == 2
    assert "cloudinit_delivery: iso" in result.stderr
    assert sim.writes() == []
