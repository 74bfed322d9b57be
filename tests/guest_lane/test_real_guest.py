"""The real guest lane: aihost's user-data in a debootstrapped Debian 12 guest under QEMU,
with aihost's cidata ISO and a real qemu-guest-agent, reached through the simulator's
agent endpoints (`sim serve --guest qemu`: provision.sim.qemu_bridge), so `aihost vm up`
verifies a real guest. No GPU and no NVIDIA servers: the image maps
developer.download.nvidia.com to 127.0.0.1, so the lane behaves the same on a machine
that could reach them. Times are printed (.ci/run runs the lane with -s).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from lane import BOOT_TIMEOUT, FIRST_BOOT_TIMEOUT, Lane

from provision.sim.qemu_guest import QemuGuest

pytestmark = [pytest.mark.slow, pytest.mark.guest]


def cloud_init_result(vm: QemuGuest) -> tuple[int, dict[str, Any]]:
    """`cloud-init status --wait` exit code and /run/cloud-init/result.json."""
    run = vm.exec(["cloud-init", "status", "--wait"], timeout=FIRST_BOOT_TIMEOUT)
    return run.exitcode, json.loads(vm.read_file("/run/cloud-init/result.json") or "{}")


def test_vm_up_verifies_a_real_guest_without_gpu_or_runtime(lane: Lane) -> None:
    """gpu: none, runtime: none: the user-data is accepted, first boot reaches done with
    every phase recorded, cloud-init reports no error, the first-boot message shows once,
    and `aihost vm up` verifies the guest end to end; `--reprovision` (a new instance-id)
    runs first boot again on the same disk."""
    result, took = lane.up({"runtime": "none"})
    print(f"\nguest lane: vm up (boot + first boot + verify) took {took:.0f} s")
    assert result.exit_code == 0, result.stderr
    assert "lane: first boot: done ok" in result.stderr
    qemu = lane.guest()
    code, status = cloud_init_result(qemu)
    assert code == 0 and status["v1"]["errors"] == [], status
    state = json.loads(qemu.read_file("/var/lib/aihost/state.json") or "{}")
    assert (state["phase"], state["status"]) == ("done", "ok")
    assert state["phases"]["health"] == {"status": "ok", "error": None}
    log = qemu.read_file("/var/log/cloud-init-output.log") or ""
    assert log.count("aihost: first boot of lane done") == 1, log[-2000:]
    result, took = lane.up({"runtime": "none"}, "--reprovision")
    print(f"\nguest lane: vm up --reprovision took {took:.0f} s")
    assert result.exit_code == 0, result.stderr
    qemu = lane.guest()
    state = json.loads(qemu.read_file("/var/lib/aihost/state.json") or "{}")
    assert (state["instance_id"], state["phase"], state["status"]) == (
        "aihost-lane-g2",
        "done",
        "ok",
    ), state
    code, status = cloud_init_result(qemu)  # the new instance's first boot, no error
    assert code == 0 and status["v1"]["errors"] == [], status
    assert qemu.read_file("/var/lib/aihost/firstboot-done") == "aihost-lane-g2\n"


def test_gpu_vm_fails_the_driver_phase_with_its_reason_then_boots_cleanly(lane: Lane) -> None:
    """A GPU VM without NVIDIA's servers: `vm up` reports the driver phase with curl's own
    error (not a timeout), cloud-init reports the error, no reboot happens; a second boot
    has no ordering cycle, no failed unit (no restart loop) and keeps the failed state."""
    result, took = lane.up({"gpu": "rtx4090", "runtime": "ollama", "models": ["qwen2.5:0.5b"]})
    print(f"\nguest lane: GPU vm up failed after {took:.0f} s")
    assert result.exit_code == 3, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("aihost: error:")]
    assert "first boot failed in the driver phase" in line
    assert "curl" in line and "developer.download.nvidia.com" in line, line
    qemu = lane.guest()
    code, status = cloud_init_result(qemu)
    assert code != 0, "cloud-init status must report the failed phase"
    assert any("scripts-user" in str(err) for err in status["v1"]["errors"]), status
    assert qemu.running(), "no reboot after a failed driver install"
    qemu.poweroff()
    assert qemu.wait_exit(300), "the guest did not power off"
    start = time.monotonic()
    qemu.start()
    qemu.wait_agent(BOOT_TIMEOUT)
    qemu.exec(["cloud-init", "status", "--wait"], timeout=BOOT_TIMEOUT)
    print(f"\nguest lane: second boot to cloud-init done in {time.monotonic() - start:.0f} s")
    journal = qemu.exec(["journalctl", "-b", "--no-pager", "-o", "cat"]).out
    assert "ordering cycle" not in journal and "deleted to break" not in journal
    failed = qemu.exec(["systemctl", "--failed", "--no-legend", "--plain"]).out
    assert failed.strip() == "", failed
    again = json.loads(qemu.read_file("/var/lib/aihost/state.json") or "{}")
    assert (again["phase"], again["status"]) == ("driver", "failed"), again
