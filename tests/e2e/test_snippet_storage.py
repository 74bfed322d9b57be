"""Cloud-init snippets on a storage other than `local` (an NFS storage named `nas`), end to
end on the simulator: the path comes from `pvesm path` over SSH, so a token without
Datastore.Allocate (which GET /storage/{id} needs) provisions, verifies and destroys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aihost_testing import run_aihost

FIXTURES = Path(__file__).resolve().parents[2] / "provision" / "sim" / "fixtures"
TOKEN = "aihost@pve!prov"
LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}


@pytest.fixture
def nas_sim(sim_from: Any, tmp_path: Path) -> Any:
    """The default world plus an NFS storage `nas` (the only one with snippets) and a token
    with every privilege but Datastore.Allocate."""
    fixture = yaml.safe_load((FIXTURES / "default.yaml").read_text(encoding="utf-8"))
    fixture["storages"]["local"]["content"].remove("snippets")
    fixture["storages"]["nas"] = {
        "type": "nfs",
        "path": "/mnt/pve/nas",
        "content": ["snippets"],
        "shared": 1,
        "total_gb": 500,
    }
    fixture["access"]["tokens"][TOKEN] = {
        "privsep": 1,
        "acl": [{"path": "/", "privs": {"all_but": ["Datastore.Allocate"]}}],
    }
    path = tmp_path / "fixture.yaml"
    path.write_text(yaml.safe_dump(fixture), encoding="utf-8")
    return sim_from(path, TOKEN)


def test_vm_up_and_destroy_with_snippets_on_nas(nas_sim: Any, tmp_path: Path) -> None:
    host = {
        "token": {"id": TOKEN, "secret_file": str(nas_sim.token_file)},
        "storage": {"snippets": "nas"},
    }
    inventory = nas_sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=host)
    up = run_aihost("-i", str(inventory), "-o", "json", "vm", "up", "llm-box")
    assert up.exit_code == 0, up.stderr
    vmid = up.json()["vmid"]
    assert "llama3.1:8b" in up.json()["guest"]["models"]  # the guest read the nas snippet
    on_nas = nas_sim.state_dir / "storage" / "nas" / "snippets"
    assert sorted(p.name for p in on_nas.iterdir()) == [
        "aihost-llm-box-meta.yaml",
        "aihost-llm-box-user.yaml",
    ]
    requests = nas_sim.requests()
    assert not any(r["path"].startswith("/storage/") for r in requests)
    config = [
        r for r in requests if r["path"].endswith(f"/qemu/{vmid}/config") and r["method"] == "POST"
    ]
    assert "user=nas:snippets/aihost-llm-box-user.yaml" in config[0]["params"]["cicustom"]
    again = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert again.exit_code == 0 and "no changes" in again.stdout, again.stderr
    gone = run_aihost("-i", str(inventory), "vm", "destroy", "llm-box", "--yes")
    assert gone.exit_code == 0, gone.stderr
    assert list(on_nas.iterdir()) == []
