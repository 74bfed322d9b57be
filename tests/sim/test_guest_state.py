"""The simulated guest's /var/lib/aihost/state.json through GET .../agent/file-read: the
same phases and verdicts as the real first-boot scripts (tests/unit/test_firstboot_flow.py
runs those), and qemu-server's error for a file that is not there."""

from __future__ import annotations

import json
from typing import Any

import pytest
from proxmoxer.core import ResourceException

from provision.cloudinit import render_user_data
from provision.inventory.model import Inventory

GPU_4090 = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"


def _user_data(vm: dict[str, Any]) -> str:
    inv = Inventory.model_validate(
        {
            "hosts": {"pve1": {"api": "sim"}},
            "gpus": {"g1": {"host": "pve1", "mapping": "rtx4090", "vram_gb": 24}},
            "vms": {"box": {"host": "pve1", "template": "tpl", **vm}},
        }
    )
    return render_user_data(inv, "box").text


def _started(sim, user_data: str, *, gpu: bool = False):
    api = sim.api()
    assert (
        sim.wait(api, api.nodes("pve1").qemu(9000).clone.post(newid=100, name="box", full=1))[
            "exitstatus"
        ]
        == "OK"
    )
    (sim.state_dir / "storage" / "local" / "snippets" / "u.yaml").write_text(user_data)
    vm = api.nodes("pve1").qemu(100)
    vm.config.put(cicustom="user=local:snippets/u.yaml")
    if gpu:
        api.cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090])
        vm.config.put(machine="q35", hostpci0="mapping=rtx4090,pcie=1")
    sim.wait(api, vm.status.start.post())
    return vm


def _state(vm) -> dict[str, Any]:
    return json.loads(vm.agent("file-read").get(file="/var/lib/aihost/state.json")["content"])


def test_gpu_ollama_vm_reaches_done_through_every_phase(sim):
    vm = _started(sim, _user_data({"gpu": "g1", "models": ["llama3.1:8b"]}), gpu=True)
    state = _state(vm)
    assert (state["phase"], state["status"], state["error"]) == ("done", "ok", None)
    assert list(state["phases"]) == ["driver", "reboot", "runtime", "models", "health", "done"]


def test_llamacpp_with_a_model_path_and_no_source_fails_its_models_phase(sim):
    vm = _started(
        sim, _user_data({"runtime": "llamacpp", "llamacpp": {"model_path": "/srv/m.gguf"}})
    )
    state = _state(vm)
    assert (state["phase"], state["status"]) == ("models", "failed")
    assert state["error"].startswith(
        "aihost-setup-runtime exited 1: aihost: the GGUF model /srv/m.gguf is not in the guest"
    )


def test_gpu_user_data_without_a_gpu_attached_fails_the_driver_phase(sim):
    vm = _started(sim, _user_data({"gpu": "g1"}))  # the config has no hostpci
    state = _state(vm)
    assert (state["phase"], state["status"]) == ("driver", "failed")
    assert "no NVIDIA GPU on this VM's PCI bus" in state["error"]


def test_file_read_of_a_missing_file_is_the_agent_error(sim):
    vm = _started(sim, "#cloud-config\npackages: [qemu-guest-agent]\n")
    with pytest.raises(ResourceException) as caught:
        vm.agent("file-read").get(file="/var/lib/aihost/state.json")
    assert caught.value.status_code == 500
    assert caught.value.content == (
        "Agent error: failed to open file "
        "'/var/lib/aihost/state.json' (mode: 'r'): "
        "No such file or directory"
    )


DEMO_GGUF = {
    "hf_repo": "unsloth/Llama-3.2-3B-Instruct-GGUF",
    "hf_file": "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
    "hf_revision": "e7d0997e49c9cb00d88b4c1a6a16aa894b0bbc31",
    "sha256": "6c99cc00ae910f6a532a80022cb4bc1939094527a089c29294b841c0bd87f74d",
}


def test_llamacpp_download_with_the_right_checksum_reaches_done(sim):
    vm = _started(sim, _user_data({"runtime": "llamacpp", "llamacpp": DEMO_GGUF}))
    assert (_state(vm)["phase"], _state(vm)["status"]) == ("done", "ok")


def test_llamacpp_download_with_another_checksum_fails_its_models_phase(sim):
    wrong = {**DEMO_GGUF, "sha256": "0" * 64}
    vm = _started(sim, _user_data({"runtime": "llamacpp", "llamacpp": wrong}))
    state = _state(vm)
    assert (state["phase"], state["status"]) == ("models", "failed")
    assert state["error"] == (
        "aihost-setup-runtime exited 1: aihost: the GGUF model from https://huggingface.co/"
        "unsloth/Llama-3.2-3B-Instruct-GGUF/resolve/e7d0997e49c9cb00d88b4c1a6a16aa894b0bbc31/"
        f"Llama-3.2-3B-Instruct-Q4_K_M.gguf has SHA-256 {DEMO_GGUF['sha256']}, not the "
        f"inventory's {'0' * 64}"
    )


def test_llamacpp_download_of_a_missing_file_fails_as_curl_does(sim):
    missing = {**DEMO_GGUF, "hf_file": "Llama-3.2-3B-Instruct-Q4_K_X.gguf"}
    vm = _started(sim, _user_data({"runtime": "llamacpp", "llamacpp": missing}))
    state = _state(vm)
    assert (state["phase"], state["status"]) == ("models", "failed")
    assert state["error"] == (
        "aihost-setup-runtime exited 22: curl: (22) The requested URL returned error: 404"
    )
