"""The real guest lane: aihost's user-data in a debootstrapped Debian 12 guest under QEMU
with aihost's cidata ISO and a real qemu-guest-agent (no GPU, no NVIDIA servers: the
image maps developer.download.nvidia.com to 127.0.0.1, so the lane behaves the same on
a machine that could reach them). Times are printed (`-s`) and kept in the test report.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qemu_guest import QemuGuest, build_image, kvm_usable, missing_tools

from provision.cloudinit import render_meta_data, render_user_data
from provision.inventory.model import Inventory

pytestmark = [pytest.mark.slow, pytest.mark.guest]
TCG = not kvm_usable()
BOOT_TIMEOUT = 600 if TCG else 180
FIRST_BOOT_TIMEOUT = 1500 if TCG else 600
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9vZ2xlZ29vZ2xlZ29vZ2xl lane@aihost"


@pytest.fixture(scope="module")
def image() -> Path:
    missing = missing_tools()
    if missing:
        pytest.fail(f"the guest lane needs {', '.join(missing)} (.ci/run installs them)")
    start = time.monotonic()
    path = build_image()
    print(f"\nguest lane: image ready in {time.monotonic() - start:.0f} s ({path}, "
          f"{'TCG' if TCG else 'KVM'})")
    return path


def render(vm: dict[str, Any], generation: int = 1) -> tuple[str, str]:
    """(user-data, meta-data) aihost renders for VM 'lane' on debian-12."""
    spec = {"host": "pve", "template": "tpl", "distro": "debian-12",
            "user": {"name": "lane", "ssh_keys": [KEY]}, **vm}
    inv = Inventory.model_validate({
        "hosts": {"pve": {"api": "sim"}},
        "gpus": {"g1": {"host": "pve", "mapping": "rtx", "vram_gb": 24}},
        "vms": {"lane": spec},
    })
    return (render_user_data(inv, "lane").text,
            render_meta_data("lane", f"aihost-lane-g{generation}"))


@pytest.fixture
def guest(image: Path, tmp_path: Path) -> Iterator[QemuGuest]:
    vm = QemuGuest(image, tmp_path)
    yield vm
    vm.stop()


def wait_state(vm: QemuGuest, done: Any, timeout: float) -> dict[str, Any]:
    """Poll /var/lib/aihost/state.json through the agent until done(state) holds."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if vm.running() and vm.ping():
            text = vm.read_file("/var/lib/aihost/state.json")
            state = json.loads(text) if text else {}
            if done(state):
                return state
        elif not vm.running():
            return state
        time.sleep(5)
    raise AssertionError(f"state after {timeout:.0f} s: {state}\n{vm.serial_text()[-3000:]}")


def cloud_init_status(vm: QemuGuest) -> tuple[int, dict[str, Any]]:
    """`cloud-init status --wait --long` exit code and /run/cloud-init/result.json."""
    run = vm.exec(["cloud-init", "status", "--wait"], timeout=FIRST_BOOT_TIMEOUT)
    result = json.loads(vm.read_file("/run/cloud-init/result.json") or "{}")
    return run.exitcode, result


def finished(state: dict[str, Any]) -> bool:
    return state.get("status") == "failed" or state.get("phase") == "done"


def test_none_none_finishes_first_boot(guest: QemuGuest) -> None:
    """gpu: none, runtime: none: the user-data is accepted, first boot reaches done,
    cloud-init reports no error, and the first-boot message appears once."""
    guest.write_cidata(*render({"runtime": "none"}))
    start = time.monotonic()
    guest.start()
    agent = guest.wait_agent(BOOT_TIMEOUT)
    state = wait_state(guest, finished, FIRST_BOOT_TIMEOUT)
    code, result = cloud_init_status(guest)
    first_boot = time.monotonic() - start
    print(f"\nguest lane: agent after {agent:.0f} s, first boot done after {first_boot:.0f} s")
    assert state["phase"] == "done" and state["status"] == "ok", state
    assert state["phases"]["health"]["status"] == "ok"
    assert code == 0 and result["v1"]["errors"] == [], result
    log = guest.read_file("/var/log/cloud-init-output.log") or ""
    assert log.count("aihost: first boot of lane done") == 1, log[-2000:]


def test_gpu_vm_fails_the_driver_phase_then_boots_again_cleanly(guest: QemuGuest) -> None:
    """A GPU VM without NVIDIA's servers: the driver phase fails with curl's own error,
    cloud-init reports the error, no reboot happens; a second boot has no ordering cycle,
    no restart loop, and keeps the failed state for aihost to report."""
    guest.write_cidata(*render({"gpu": "g1", "runtime": "ollama", "models": ["qwen2.5:0.5b"]}))
    guest.start()
    guest.wait_agent(BOOT_TIMEOUT)
    state = wait_state(guest, finished, FIRST_BOOT_TIMEOUT)
    assert state["phase"] == "driver" and state["status"] == "failed", state
    assert "developer.download.nvidia.com" in state["error"], state
    assert "curl" in state["error"], state
    code, result = cloud_init_status(guest)
    assert code != 0, "cloud-init status must report the failed phase"
    assert any("scripts-user" in str(err) for err in result["v1"]["errors"]), result
    assert guest.running(), "no reboot after a failed driver install"
    # Second boot: no cycle, no restart loop, the failed state stays for aihost to read.
    guest.exec(["systemctl", "poweroff"], timeout=30)
    assert guest.wait_exit(120)
    guest.start()
    guest.wait_agent(BOOT_TIMEOUT)
    guest.exec(["cloud-init", "status", "--wait"], timeout=BOOT_TIMEOUT)
    journal = guest.exec(["journalctl", "-b", "--no-pager", "-o", "cat"]).out
    assert "ordering cycle" not in journal, journal[-3000:]
    failed = guest.exec(["systemctl", "--failed", "--no-legend", "--plain"]).out
    assert failed.strip() == "", failed
    again = json.loads(guest.read_file("/var/lib/aihost/state.json") or "{}")
    assert again["phase"] == "driver" and again["status"] == "failed", again
    assert os.path.exists(guest.overlay)
