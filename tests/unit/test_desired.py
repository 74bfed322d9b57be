"""The Proxmox config the inventory asks for (no network)."""

from __future__ import annotations

from urllib.parse import unquote

from aihost_testing import INVENTORIES

from provision.inventory import load_inventory, parse_inventory
from provision.plan.desired import desired_vm, start_timeout_for
from provision.plan.model import Action, Change, Plan

INV = """
hosts:
  pve1: {api: sim, storage: {disks: fast, snippets: local}}
gpus:
  g1: {host: pve1, mapping: rtx4090, vram_gb: 24}
  raw: {host: pve1, pci: "0000:02:00", vram_gb: 12}
vms:
  box:
    host: pve1
    template: t
    memory_gb: 96
    gpu: [g1, raw]
    network: {ip: 192.168.1.9/24, gateway: 192.168.1.1, vlan: 20}
    user: {name: me, ssh_keys: ["ssh-ed25519 AAAAC3Nza me@x", "ssh-rsa AAAAB3 other"]}
  plain: {host: pve1, template: t, memory_gb: 4}
"""


def test_gpu_vm_gets_q35_ovmf_without_preenrolled_keys_and_all_functions():
    inv = parse_inventory(INV, "x")
    want = desired_vm(inv, "box")
    config = want.config
    assert config["machine"] == "q35" and config["bios"] == "ovmf" and config["cpu"] == "host"
    assert config["efidisk0"] == "fast:1,efitype=4m,pre-enrolled-keys=0"
    assert config["hostpci0"] == "mapping=rtx4090,pcie=1"
    assert config["hostpci1"] == "0000:02:00,pcie=1"
    assert config["agent"] == "1" and config["tags"] == "aihost"
    assert config["memory"] == str(96 * 1024)
    assert config["net0"] == "virtio,bridge=vmbr0,tag=20"
    assert config["ipconfig0"] == "ip=192.168.1.9/24,gw=192.168.1.1"
    assert config["ide2"] == "fast:cloudinit"
    assert config["cicustom"] == (
        "user=local:snippets/aihost-box-user.yaml,meta=local:snippets/aihost-box-meta.yaml"
    )
    assert unquote(config["sshkeys"]).splitlines() == [
        "ssh-ed25519 AAAAC3Nza me@x",
        "ssh-rsa AAAAB3 other",
    ]
    assert "%" in config["sshkeys"] and " " not in config["sshkeys"]


def test_start_timeout_grows_with_memory_for_gpu_vms_only():
    inv = parse_inventory(INV, "x")
    assert start_timeout_for(inv.vms["box"]) == 3 * 96  # qemu-server: 96 x 4 with the GPU
    assert start_timeout_for(inv.vms["plain"]) == 30  # max(30, 4 GiB); the planner adds 5 per net
    small_gpu = inv.vms["box"].model_copy(update={"memory_gb": 8})
    assert start_timeout_for(small_gpu) == 60


def test_example_inventories_translate():
    inv = load_inventory(INVENTORIES / "homelab.example.yaml")
    assert desired_vm(inv, "vllm-box").vmid == 121


def test_plan_text_and_json():
    plan = Plan(
        "box",
        "pve1",
        120,
        True,
        [
            Action(
                "configure",
                "set VM options",
                (Change("memory", "16384", "32768"), Change("hostpci1", "0000:02:00", None)),
            ),
            Action("verify", "verify", writes=False),
        ],
    )
    text = plan.to_text()
    assert "~ memory: 16384 -> 32768" in text and "- hostpci1: 0000:02:00" in text
    assert plan.to_json()["changes"] is True
    quiet = Plan("box", "pve1", 120, True, [Action("verify", "verify", writes=False)])
    assert quiet.to_text() == "box (pve1/120): no changes"
