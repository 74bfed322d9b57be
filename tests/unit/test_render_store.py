"""The user-data of a GPU VM using its host's model store: the virtiofs mount unit, the
runtime's model directory on it, the mount before the runtime phase; none of it without a
store, for a VM without a GPU, or when the node has no virtiofs (model_store=False)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_render_helpers import files, inventory, parse
from test_units_verify import _tools, scratch_root, verify

from provision.cloudinit import render_user_data
from provision.inventory.model import Inventory

MOUNT = "/etc/systemd/system/var-lib-aihost-models.mount"
STORE = {"path": "/srv/aihost-models", "mapping": "models-a"}


def _stored(vm: dict[str, Any] | None = None, *, gpu: bool = True) -> Inventory:
    inv = inventory(vm, gpu=gpu)
    data = inv.model_dump(exclude={"source"})
    data["hosts"]["pve"] = {"api": "sim", "model_store": STORE}
    return Inventory.model_validate(data)


def _doc(inv: Inventory, **kw: Any) -> dict[str, Any]:
    return parse(render_user_data(inv, "box", **kw).text)


def _unit_keys(text: str) -> list[tuple[str, str]]:
    return [tuple(line.split("=", 1)) for line in text.splitlines() if "=" in line]  # type: ignore[misc]


def test_ollama_keeps_its_models_in_the_mounted_store() -> None:
    doc = _doc(_stored())
    written = files(doc)
    keys = dict(_unit_keys(written[MOUNT]["content"]))
    assert keys["What"] == "models-a"  # the tag is the mapping id (qemu-server Virtiofs.pm)
    assert (keys["Where"], keys["Type"]) == ("/var/lib/aihost/models", "virtiofs")
    unit = written["/etc/systemd/system/ollama.service"]["content"]
    assert "Environment=OLLAMA_MODELS=/var/lib/aihost/models/ollama" in unit.splitlines()
    assert "RequiresMountsFor=/var/lib/aihost/models" in unit.splitlines()
    boot = written["/var/lib/cloud/scripts/per-boot/aihost-boot"]["content"]
    mount = boot.index("systemctl enable --now var-lib-aihost-models.mount")
    assert boot.index("systemctl daemon-reload") < mount < boot.index("run runtime -- /usr")
    setup = written["/usr/local/sbin/aihost-setup-runtime"]["content"]
    assert "    store_owner /var/lib/aihost/models/ollama 65600" in setup.splitlines()
    assert "chown -R" not in "\n".join(ln for ln in setup.splitlines() if ln[:1] != "#")


def test_vllm_and_llamacpp_use_the_store_too() -> None:
    vllm = files(_doc(_stored({"runtime": "vllm", "models": ["Qwen/Qwen2.5-7B-Instruct"]})))
    assert "Environment=HF_HOME=/var/lib/aihost/models/huggingface" in (
        vllm["/etc/systemd/system/vllm.service"]["content"].splitlines()
    )
    setup = vllm["/usr/local/sbin/aihost-setup-runtime"]["content"]
    start = setup[setup.index("start() {") : setup.index("\n}\n", setup.index("start() {"))]
    # in start: a VM of a baked image (serve) runs start only
    assert "    store_owner /var/lib/aihost/models/huggingface 65601" in start.splitlines()
    gguf = {"hf_repo": "u/M-GGUF", "hf_file": "M-Q4_K_M.gguf", "sha256": "ab" * 32}
    llama = files(_doc(_stored({"runtime": "llamacpp", "llamacpp": gguf})))
    unit = llama["/etc/systemd/system/llama-server.service"]["content"]
    assert '-m "/var/lib/aihost/models/M-Q4_K_M.gguf"' in unit
    assert "RequiresMountsFor=/var/lib/aihost/models" in unit.splitlines()
    assert MOUNT in llama


@pytest.mark.parametrize(
    ("inv", "kw"),
    [
        (inventory(), {}),  # the host has no store
        (_stored(gpu=False), {}),  # only GPU VMs use it
        (_stored({"model_store": False}), {}),  # the VM opted out
        (_stored(), {"model_store": False}),  # the node has no virtiofs (PVE < 8.4)
    ],
)
def test_no_store_no_mount_and_the_runtime_as_before(inv: Inventory, kw: dict[str, Any]) -> None:
    text = render_user_data(inv, "box", **kw).text
    assert MOUNT not in files(parse(text)) and "enable --now var-lib-aihost-models" not in text
    assert "OLLAMA_MODELS" not in text and "RequiresMountsFor" not in text


def test_without_a_store_the_first_boot_removes_a_store_mount_left_from_before(
    tmp_path: Path,
) -> None:
    """Opted out and re-provisioned: the guest's mount unit from its earlier user-data
    is disabled and removed (the VM has no such share any more), once."""
    from test_firstboot_flow import sandbox

    box = sandbox(tmp_path, {"model_store": False}, gpu=False)
    units = tmp_path / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / "var-lib-aihost-models.mount").write_text("[Mount]\nWhat=aihost-models\n")
    boot = tmp_path / "cloud/scripts/per-boot/aihost-boot"
    boot.write_text(boot.read_text().replace("/etc/systemd/system", str(units)))
    box.stub("aihost-setup-runtime", "exit 0", "bin")
    box.stub("aihost-health", 'echo "{}"', "bin")
    run = box.run("bin/aihost-firstboot")
    assert run.returncode == 0, run.stderr
    assert not (units / "var-lib-aihost-models.mount").exists()
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert "systemctl disable --now var-lib-aihost-models.mount" in calls


def test_store_units_with_cloud_init_units_have_no_cycle(tmp_path: Path) -> None:
    _tools()
    written = files(_doc(_stored()))
    units = {
        path.rsplit("/", 1)[1]: item["content"]
        for path, item in written.items()
        if path.startswith("/etc/systemd/system/")
    }
    assert "var-lib-aihost-models.mount" in units
    out = verify(scratch_root(tmp_path, units))
    assert "ordering cycle" not in out and "deleted to break" not in out, out
    assert "var-lib-aihost-models.mount" not in out, out  # systemd accepts the unit as is
