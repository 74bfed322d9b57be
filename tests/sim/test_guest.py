"""The guest model: agent, nvidia-smi, aihost-health, instance-id, interfaces."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from provision.sim.guest import (
    GuestView,
    SpawnError,
    agent_available,
    exec_command,
    first_boots_after,
    instance_id,
    network_interfaces,
)
from provision.sim.guest_runtime import runtime_of
from provision.sim.guest_userdata import driver_version, parse_user_data

RTX4090 = {"name": "NVIDIA GeForce RTX 4090", "memory_mib": 24564, "pci": "0000:01:00.0"}
NVIDIA_QUERY = [
    "nvidia-smi",
    "--query-gpu=name,memory.total,driver_version",
    "--format=csv,noheader",
]
HEALTH = ["/usr/local/bin/aihost-health"]

AGENT_ONLY = "#cloud-config\npackages:\n  - qemu-guest-agent\n"
UBUNTU_GPU = """#cloud-config
packages:
  - qemu-guest-agent
  - [nvidia-headless-550-server, 550.127.05-0ubuntu0.24.04.1]
  - nvidia-utils-550-server
"""
OLLAMA = """#cloud-config
packages: [qemu-guest-agent, zstd]
runcmd:
  - [ubuntu-drivers, install, --gpgpu, "nvidia:570-server"]
write_files:
  - path: /usr/local/bin/aihost-health
    permissions: "0755"
    content: |
      #!/bin/sh
      echo {}
  - path: /etc/systemd/system/ollama.service
    content: |
      [Service]
      Environment="OLLAMA_HOST=0.0.0.0:11434"
      ExecStart=/usr/local/bin/ollama serve
  - path: /etc/aihost/models
    content: |
      llama3.1:8b
      qwen2.5
"""


def view(user_data: str | None = AGENT_ONLY, **changes: Any) -> GuestView:
    base = GuestView(
        vmid=100,
        config={
            "agent": "1",
            "machine": "q35",
            "net0": "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0",
            "ipconfig0": "ip=192.168.1.50/24,gw=192.168.1.1",
            "name": "llm-box",
        },
        user_data=user_data,
        meta_data=None,
        gpus=[RTX4090],
        seconds_since_start=30.0,
        boot_delay=10.0,
        ip="192.168.1.50",
    )
    return replace(base, **changes)


def with_config(v: GuestView, **config: str) -> GuestView:
    return replace(v, config={**v.config, **config})


AGENT_CASES = [
    ("agent 1, installed, booted", view(), True),
    (
        "enabled=1 property string",
        with_config(view(), agent="enabled=1,fstrim_cloned_disks=1"),
        True,
    ),
    ("1 with type", with_config(view(), agent="1,type=virtio"), True),
    ("agent: on", with_config(view(), agent="on"), True),
    ("agent 0", with_config(view(), agent="0"), False),
    ("enabled=0", with_config(view(), agent="enabled=0"), False),
    ("no agent option", replace(view(), config={"machine": "q35"}), False),
    ("stopped", view(running=False), False),
    ("still booting", view(seconds_since_start=9.9), False),
    ("boot delay exactly passed", view(seconds_since_start=10.0), True),
    ("not installed", view("#cloud-config\npackages: [curl]\n"), False),
    (
        "installed as [name, version]",
        view("#cloud-config\npackages:\n - [qemu-guest-agent, '1:8.2.2']\n"),
        True,
    ),
    (
        "installed as name=version",
        view("#cloud-config\npackages: [qemu-guest-agent=1:8.2]\n"),
        True,
    ),
    ("no user-data (Proxmox generated)", view(None), False),
    ("not cloud-config", view("packages: [qemu-guest-agent]\n"), False),
    ("broken YAML", view("#cloud-config\npackages: [qemu-guest-agent\n"), False),
    ("YAML list, not a mapping", view("#cloud-config\n- qemu-guest-agent\n"), False),
    (
        "only runcmd installs it",
        view("#cloud-config\nruncmd:\n - apt-get install -y curl\n"),
        False,
    ),
]


@pytest.mark.parametrize(
    ("case", "guest", "expected"), AGENT_CASES, ids=[c[0] for c in AGENT_CASES]
)
def test_agent_available(case: str, guest: GuestView, expected: bool) -> None:
    assert agent_available(guest) is expected, case


# qemu-ga's guest-exec spawns the program itself (no shell): glib's error, as agent error
NO_NVIDIA_SMI = (
    "Guest agent command failed, error was 'Failed to execute child process "
    "\u201cnvidia-smi\u201d (No such file or directory)'"
)
NVIDIA_CASES = [
    ("no driver, GPU", AGENT_ONLY, [RTX4090], {}, None, NO_NVIDIA_SMI),
    (
        "driver, no GPU",
        UBUNTU_GPU,
        [],
        {},
        9,
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver",
    ),
    (
        "pinned package",
        UBUNTU_GPU,
        [RTX4090],
        {},
        0,
        "NVIDIA GeForce RTX 4090, 24564 MiB, 550.127.05\n",
    ),
    (
        "ubuntu-drivers list runcmd, branch 570",
        OLLAMA,
        [RTX4090],
        {},
        0,
        "NVIDIA GeForce RTX 4090, 24564 MiB, 570.133.07\n",
    ),
    (
        "runcmd apt line",
        "#cloud-config\nruncmd:\n - apt-get install -y nvidia-driver-535-server\n",
        [RTX4090],
        {},
        0,
        "535.183.01",
    ),
    (
        "debian nvidia repo DKMS",
        "#cloud-config\npackages: [nvidia-driver-cuda, nvidia-kernel-open-dkms]\n",
        [RTX4090],
        {},
        0,
        "550.127.05",
    ),
    (
        "DKMS under Secure Boot",
        "#cloud-config\npackages: [nvidia-kernel-open-dkms]\n",
        [RTX4090],
        {"bios": "ovmf", "efidisk0": "local-lvm:vm-100-disk-1,efitype=4m,pre-enrolled-keys=1"},
        9,
        "couldn't communicate",
    ),
    (
        "DKMS, Secure Boot keys not enrolled",
        "#cloud-config\npackages: [nvidia-open]\n",
        [RTX4090],
        {"bios": "ovmf", "efidisk0": "local-lvm:vm-100-disk-1,pre-enrolled-keys=0"},
        0,
        "RTX 4090",
    ),
    (
        "signed modules under Secure Boot",
        OLLAMA,
        [RTX4090],
        {"bios": "ovmf", "efidisk0": "local-lvm:vm-100-disk-1,pre-enrolled-keys=1"},
        0,
        "570.",
    ),
    (
        "script written then run",
        "#cloud-config\nwrite_files:\n - path: /root/drv.sh\n"
        "   content: |\n     ubuntu-drivers install --gpgpu\nruncmd:\n - [sh, /root/drv.sh]\n",
        [RTX4090],
        {},
        0,
        "550.127.05",
    ),
    (
        "unrelated nvidia package",
        "#cloud-config\npackages: [nvidia-container-toolkit]\n",
        [RTX4090],
        {},
        None,
        NO_NVIDIA_SMI,
    ),
]


@pytest.mark.parametrize(
    ("case", "user_data", "gpus", "config", "code", "text"),
    NVIDIA_CASES,
    ids=[c[0] for c in NVIDIA_CASES],
)
def test_nvidia_smi(
    case: str,
    user_data: str,
    gpus: list[dict[str, Any]],
    config: dict[str, str],
    code: int,
    text: str,
) -> None:
    guest = with_config(view(user_data, gpus=gpus), **config)
    if code is None:
        with pytest.raises(SpawnError) as caught:
            exec_command(guest, NVIDIA_QUERY)
        assert str(caught.value) == text
        return
    result = exec_command(guest, NVIDIA_QUERY)
    assert result.exitcode == code, case
    assert text in result.out + result.err, case
    if code == 0:
        assert result.out.count("\n") == len(gpus)


def test_nvidia_smi_list_and_table_and_bad_field() -> None:
    two = view(
        UBUNTU_GPU,
        gpus=[
            RTX4090,
            {
                **RTX4090,
                "name": "NVIDIA GeForce RTX 3060",
                "memory_mib": 12288,
                "pci": "0000:02:00.0",
            },
        ],
    )
    listed = exec_command(two, ["nvidia-smi", "-L"])
    assert listed.exitcode == 0
    assert listed.out.startswith("GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-")
    assert "GPU 1: NVIDIA GeForce RTX 3060" in listed.out
    table = exec_command(two, ["nvidia-smi"])
    assert "Driver Version: 550.127.05" in table.out and "12288MiB" in table.out
    header = exec_command(two, ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv"])
    assert header.out.splitlines()[0] == "name, memory.total [MiB]"
    bad = exec_command(two, ["nvidia-smi", "--query-gpu=nme", "--format=csv"])
    assert bad.exitcode == 2 and 'Field "nme" is not a valid field' in bad.out


def health(guest: GuestView) -> tuple[int, dict[str, Any]]:
    result = exec_command(guest, HEALTH)
    return result.exitcode, json.loads(result.out)


def test_health_absent_without_write_files() -> None:
    with pytest.raises(SpawnError) as caught:
        exec_command(view(UBUNTU_GPU), HEALTH)
    wanted = "Failed to execute child process \u201c/usr/local/bin/aihost-health\u201d (No such"
    assert wanted in str(caught.value)


def test_health_ollama_on_gpu() -> None:
    code, data = health(view(OLLAMA))
    assert code == 0
    assert data["gpu"] == {
        "visible": True,
        "name": "NVIDIA GeForce RTX 4090",
        "memory_mib": 24564,
        "driver": "570.133.07",
    }
    assert data["runtime"] == {
        "name": "ollama",
        "reachable": True,
        "url": "http://192.168.1.50:11434",
        "models": ["llama3.1:8b", "qwen2.5:latest"],
        "on_gpu": True,
        "context": 4096,  # Ollama's default below 24 GiB of VRAM (docs/context-length.mdx)
        "parallel": None,  # no OLLAMA_NUM_PARALLEL in the server's environment
    }


@pytest.mark.parametrize(
    ("name", "unit", "vram", "expected"),
    [
        (
            "ollama",
            "Environment=OLLAMA_CONTEXT_LENGTH=16384\nEnvironment=OLLAMA_NUM_PARALLEL=2",
            12288,
            {"context": 16384, "parallel": 2},
        ),
        ("ollama", "", 32768, {"context": 32768, "parallel": None}),
        ("ollama", "", 49152, {"context": 262144, "parallel": None}),
        (
            "vllm",
            "ExecStart=/opt/vllm/bin/vllm serve m --max-model-len 8192 --max-num-seqs 4",
            24564,
            {"context": 8192, "parallel": 4},
        ),
        (
            "vllm",
            "ExecStart=/opt/vllm/bin/vllm serve m",
            24564,
            {"context": None, "parallel": None},
        ),
        # -c is the whole cache: /props gives each of the -np slots c/np
        (
            "llamacpp",
            "ExecStart=/usr/local/bin/llama-server -m /m.gguf -c 12288 -np 3 -ngl 999",
            12288,
            {"context": 4096, "parallel": 3},
        ),
    ],
)
def test_the_runtime_reports_the_settings_its_unit_starts_it_with(
    name: str, unit: str, vram: int, expected: dict
) -> None:
    from provision.sim.guest_runtime import Runtime, runtime_settings

    runtime = Runtime(name, f"{name}.service", "127.0.0.1", 1, ["m"])
    assert runtime_settings(runtime, unit, vram) == expected


HEALTH_CASES = [
    ("ollama, no GPU attached: CPU", OLLAMA, [], 1, False, "ollama", True, False),
    (
        "ollama on Debian's 535 driver falls back to CPU",
        OLLAMA.replace(
            '[ubuntu-drivers, install, --gpgpu, "nvidia:570-server"]',
            "apt-get install -y nvidia-driver",
        ),
        [RTX4090],
        0,
        True,
        "ollama",
        True,
        False,
    ),
    (
        "no runtime, no driver, no GPU",
        "#cloud-config\nwrite_files:\n - path: /usr/local/bin/aihost-health\n   content: x\n",
        [],
        0,
        False,
        "none",
        False,
        False,
    ),
    (
        "no driver but GPU attached",
        "#cloud-config\nwrite_files:\n - path: /usr/local/bin/aihost-health\n   content: x\n",
        [RTX4090],
        1,
        False,
        "none",
        False,
        False,
    ),
    (
        "vllm without GPU does not start",
        OLLAMA.replace("ollama.service", "vllm.service"),
        [],
        1,
        False,
        "vllm",
        False,
        False,
    ),
    (
        "llama.cpp on GPU",
        OLLAMA.replace("ollama.service", "llama-server.service"),
        [RTX4090],
        0,
        True,
        "llamacpp",
        True,
        True,
    ),
]


@pytest.mark.parametrize(
    ("case", "user_data", "gpus", "code", "gpu_visible", "runtime", "reachable", "on_gpu"),
    HEALTH_CASES,
    ids=[c[0] for c in HEALTH_CASES],
)
def test_health_cases(
    case: str,
    user_data: str,
    gpus: list[dict[str, Any]],
    code: int,
    gpu_visible: bool,
    runtime: str,
    reachable: bool,
    on_gpu: bool,
) -> None:
    got_code, data = health(view(user_data, gpus=gpus))
    assert got_code == code, case
    assert data["gpu"]["visible"] is gpu_visible, case
    assert data["runtime"]["name"] == runtime, case
    assert data["runtime"]["reachable"] is reachable, case
    assert data["runtime"]["on_gpu"] is on_gpu, case


def test_runtime_models_and_ports() -> None:
    vllm = parse_user_data(
        "#cloud-config\nwrite_files:\n - path: /etc/systemd/system/vllm.service"
        "\n   content: 'ExecStart=/opt/v/bin/vllm serve Qwen/Qwen2.5-7B "
        "--port 8001'\n"
    )
    found = runtime_of(vllm)
    assert found is not None
    assert (found.name, found.port, found.models) == ("vllm", 8001, ["Qwen/Qwen2.5-7B"])


def test_driver_detection_variants() -> None:
    assert driver_version(parse_user_data("#cloud-config\npackages:\n  apt: [nvidia-open]\n"))
    assert (
        driver_version(parse_user_data("#cloud-config\npackages: [nvidia-driver]\n"))
        == "535.216.01"
    )
    multipart = (
        'Content-Type: multipart/mixed; boundary="X"\nMIME-Version: 1.0\n\n--X\n'
        "Content-Type: text/cloud-config\n\n#cloud-config\npackages: "
        "[nvidia-headless-565-server]\n--X--\n"
    )
    assert driver_version(parse_user_data(multipart)) == "565.57.01"
    assert driver_version(parse_user_data("#cloud-config\npackages: [htop]\n")) is None


def test_instance_id() -> None:
    user, network = "#cloud-config\n", "version: 1\nconfig: []\n"
    expected = hashlib.sha1((user + network).encode()).hexdigest()
    assert instance_id(user, None, network) == expected
    assert instance_id(user, None, None) == hashlib.sha1(user.encode()).hexdigest()
    assert instance_id(user + "#x\n", None, network) != expected
    assert instance_id(user, "instance-id: aihost-box-g2\n", network) == "aihost-box-g2"
    assert instance_id(user, "local-hostname: box\n", network) == "nocloud"
    assert first_boots_after(None, 0, "a") == 1
    assert first_boots_after("a", 1, "a") == 1
    assert first_boots_after("a", 1, "b") == 2


def test_cloud_init_commands() -> None:
    guest = view(OLLAMA, meta_data="instance-id: iid-7\nlocal-hostname: box\n", first_boots=3)
    assert exec_command(guest, ["cloud-init", "query", "instance-id"]).out == "iid-7\n"
    assert exec_command(guest, ["cloud-init", "status"]).out == "status: done\n"
    assert exec_command(guest, ["aihost-sim-first-boots"]).out == "3\n"
    assert exec_command(guest, ["hostname"]).out == "box\n"
    assert exec_command(view("#cloud-config\n: [\n"), ["cloud-init", "status"]).exitcode == 1


def test_other_commands() -> None:
    guest = view(OLLAMA)
    lspci = exec_command(guest, ["sh", "-c", "lspci -nn | grep -i nvidia"])
    assert lspci.exitcode == 0
    assert lspci.out == (
        "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation AD102 "
        "[GeForce RTX 4090] [10de:2684] (rev a1)\n"
    )
    assert exec_command(guest, ["cat", "/proc/cmdline"]).out.startswith("BOOT_IMAGE=")
    assert exec_command(guest, ["cat", "/etc/aihost/models"]).out == "llama3.1:8b\nqwen2.5\n"
    missing = exec_command(guest, ["cat", "/nope"])
    assert (missing.exitcode, missing.err) == (1, "cat: /nope: No such file or directory\n")
    active = exec_command(guest, ["systemctl", "is-active", "ollama", "qemu-guest-agent"])
    assert (active.exitcode, active.out) == (0, "active\nactive\n")
    inactive = exec_command(guest, ["systemctl", "is-active", "vllm.service"])
    assert (inactive.exitcode, inactive.out) == (3, "inactive\n")
    with pytest.raises(SpawnError):  # guest-exec runs no shell: nothing to say exit 127
        exec_command(guest, ["frobnicate", "--x"])
    in_shell = exec_command(guest, ["sh", "-c", "frobnicate --x"])
    assert (in_shell.exitcode, in_shell.err) == (127, "bash: frobnicate: command not found\n")
    secure = with_config(guest, bios="ovmf", efidisk0="x:1,pre-enrolled-keys=1")
    assert exec_command(secure, ["mokutil", "--sb-state"]).out == "SecureBoot enabled\n"


def test_network_interfaces() -> None:
    ifaces = network_interfaces(view())
    assert [i["name"] for i in ifaces] == ["lo", "eth0"]
    eth0 = ifaces[1]
    assert eth0["hardware-address"] == "bc:24:11:aa:bb:cc"
    v4 = [a for a in eth0["ip-addresses"] if a["ip-address-type"] == "ipv4"]
    assert v4 == [{"ip-address-type": "ipv4", "ip-address": "192.168.1.50", "prefix": 24}]
    v6 = [a["ip-address"] for a in eth0["ip-addresses"] if a["ip-address-type"] == "ipv6"]
    assert v6 == ["fe80::be24:11ff:feaa:bbcc"]
    dhcp = network_interfaces(view(ip="10.20.0.7", config={"net0": "virtio,bridge=vmbr0"}))
    assert dhcp[1]["ip-addresses"][0]["ip-address"] == "10.20.0.7"
    assert dhcp[1]["hardware-address"].startswith("bc:24:11:")
