"""Independent clients drive the simulator unmodified: Ansible's
`community.proxmox.proxmox_kvm` (create with a network device, configure with
`update: true`, start) and plain proxmoxer. Ansible comes with the test extra
(pyproject.toml); without it the test fails under AIHOST_REQUIRE_TOOLS=1, as CI sets."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from bench.ansible_peer import KVM, ansible_env, available, run_playbook, write_playbook

NODE = "pve1"


def _require_ansible() -> None:
    if available():
        return
    problem = "ansible with community.proxmox is not installed (pip install -e '.[test]')"
    if os.environ.get("AIHOST_REQUIRE_TOOLS") == "1":
        pytest.fail(problem + " and AIHOST_REQUIRE_TOOLS=1")
    pytest.skip(problem)


def _play(sim: Any, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    user, name = sim.server.token_id.split("!")
    auth = {
        "api_host": "127.0.0.1",
        "api_port": sim.server.port,
        "api_user": user,
        "api_token_id": name,
        "api_token_secret": sim.server.secret_for(sim.server.token_id),
        "validate_certs": True,
        "node": NODE,
    }
    return [
        {
            "name": "independent client",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "module_defaults": {KVM: auth},
            "tasks": tasks,
        }
    ]


@pytest.mark.slow
def test_ansible_proxmox_kvm_creates_configures_and_starts(sim: Any, tmp_path: Path) -> None:
    """proxmox_kvm: create with net0, `update: true` (cores, memory, description), start."""
    _require_ansible()
    tasks = [
        {
            "name": "create",
            KVM: {
                "vmid": 150,
                "name": "ansible-vm",
                "memory": 2048,
                "cores": 2,
                "scsihw": "virtio-scsi-single",
                "net": {"net0": "virtio,bridge=vmbr0"},
                "timeout": 30,
            },
        },
        {
            "name": "configure",
            KVM: {
                "vmid": 150,
                "update": True,
                "cores": 4,
                "memory": 4096,
                "description": "made by ansible",
            },
        },
        {"name": "start", KVM: {"vmid": 150, "state": "started", "timeout": 30}},
    ]
    playbook = write_playbook(tmp_path / "play.yml", _play(sim, tasks))
    started = time.monotonic()
    proc = run_playbook(playbook, ansible_env(tmp_path, str(sim.server.cert_path)))
    elapsed = time.monotonic() - started
    assert proc.exit_code == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    api = sim.api()
    config = api.nodes(NODE).qemu(150).config.get()
    assert config["name"] == "ansible-vm"
    assert config["net0"].startswith("virtio=") and "bridge=vmbr0" in config["net0"]
    assert (int(config["cores"]), int(config["memory"])) == (4, 4096)
    assert config["description"] == "made by ansible"
    assert api.nodes(NODE).qemu(150).status.current.get()["status"] == "running"
    assert elapsed < 60


def test_plain_proxmoxer_creates_configures_and_starts(sim: Any) -> None:
    """proxmoxer without any aihost code: nextid, create, config, start, task status."""
    api = sim.api()
    vmid = int(api.cluster.nextid.get())
    upid = api.nodes(NODE).qemu.post(
        vmid=vmid, name="px", memory=1024, net0="virtio,bridge=vmbr0", scsihw="virtio-scsi-pci"
    )
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    api.nodes(NODE).qemu(vmid).config.put(cores=2)
    upid = api.nodes(NODE).qemu(vmid).status.start.post()
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    config = api.nodes(NODE).qemu(vmid).config.get()
    assert config["cores"] == 2 and "bridge=vmbr0" in config["net0"]
    assert api.nodes(NODE).qemu(vmid).status.current.get()["status"] == "running"


def test_net_gets_a_mac_and_print_order_on_create_and_config(sim: Any) -> None:
    """qemu-server add_random_macs / $update_vm_api parse_net+print_net (Network.pm):
    `virtio,firewall=1,bridge=vmbr0` is stored as `virtio=BC:24:11:…,bridge=vmbr0,firewall=1`,
    and a given MAC is kept."""
    api = sim.api()
    upid = api.nodes(NODE).qemu.post(vmid=160, net0="virtio,firewall=1,bridge=vmbr0")
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    net0 = api.nodes(NODE).qemu(160).config.get()["net0"]
    mac = net0.split(",")[0].split("=")[1]
    assert net0 == f"virtio={mac},bridge=vmbr0,firewall=1" and mac.startswith("BC:24:11:")
    api.nodes(NODE).qemu(160).config.put(net1="model=e1000,macaddr=BC:24:11:00:00:01,bridge=vmbr0")
    assert api.nodes(NODE).qemu(160).config.get()["net1"] == "e1000=BC:24:11:00:00:01,bridge=vmbr0"
