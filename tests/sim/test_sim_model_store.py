"""provision.sim.model_store: a VM finds models in its node's store only when its config
passes the store (virtiofsN on a mapping with a path on its node), its user-data mounts
the tag, and the runtime's model directory is below the mount point."""

from __future__ import annotations

from typing import Any

from provision.sim import model_store
from provision.sim.guest_models import model_bytes

UNIT = "/etc/systemd/system/var-lib-aihost-models.mount"
MOUNT = "[Mount]\nWhat=models\nWhere=/var/lib/aihost/models\nType=virtiofs\n"
OLLAMA = "[Service]\nEnvironment=OLLAMA_MODELS=/var/lib/aihost/models/ollama\n"


def _user_data(mount: str | None, unit: str = OLLAMA) -> str:
    files = [("/etc/systemd/system/ollama.service", unit), ("/etc/aihost/models", "llama3.1:8b\n")]
    if mount is not None:
        files.append((UNIT, mount))
    body = "".join(
        f"  - path: {path}\n    content: |\n"
        + "".join(f"      {line}\n" for line in text.splitlines())
        for path, text in files
    )
    return "#cloud-config\nwrite_files:\n" + body


def _world(user_data: str, virtiofs: str | None = "models") -> tuple[dict[str, Any], dict]:
    world: dict[str, Any] = {
        "nodes": {"pve1": {}},
        "mappings": {"dir": {"models": {"map": ["node=pve1,path=/srv/m"]}}},
    }
    config = {"virtiofs0": virtiofs} if virtiofs else {}
    vm = {"node": "pve1", "config": config, "guest": {"user_data": user_data}}
    return world, vm


def test_a_first_boot_fills_the_store_and_the_next_one_finds_it() -> None:
    world, vm = _world(_user_data(MOUNT))
    sizes = {"llama3.1:8b": model_bytes("llama3.1:8b")}
    assert model_store.stored_model_bytes(world, vm, sizes) == 0
    model_store.first_boot(world, vm)
    assert vm["guest"]["models_pull"]["downloaded_bytes"] == sizes["llama3.1:8b"]
    model_store.settle(world, vm, '{"phases": {"models": {"status": "failed"}}}')
    assert model_store.stored_model_bytes(world, vm, sizes) == 0  # a failed pull stores nothing
    model_store.settle(world, vm, '{"phases": {"models": {"status": "ok"}}}')
    assert world["nodes"]["pve1"]["store"] == {"/srv/m": sizes}
    assert model_store.stored_model_bytes(world, vm, sizes) == sizes["llama3.1:8b"]
    assert model_store.stored_model_bytes(world, vm, ["llama3.1:8b"]) == sizes["llama3.1:8b"]
    model_store.first_boot(world, vm)
    assert vm["guest"]["models_pull"]["downloaded_bytes"] == 0


def test_no_store_without_the_key_the_mount_or_the_model_dir_on_it() -> None:
    for world, vm in (
        _world(_user_data(MOUNT), virtiofs=None),
        _world(_user_data(None)),
        _world(_user_data(MOUNT, "[Service]\nExecStart=/usr/bin/ollama serve\n")),
        _world(_user_data(MOUNT.replace("What=models", "What=other"))),
    ):
        assert model_store.store_path(world, vm) is None
