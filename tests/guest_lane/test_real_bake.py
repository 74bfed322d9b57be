"""The real guest lane, baked: `aihost template bake`'s guest side and a VM of its disk.

The bake user-data and the VM's user-data are rendered by aihost's own renderers from an
inventory with a `bake:` recipe whose VM names it as its template (as `template bake`
and `vm up` render them), and delivered on aihost's cidata ISO. The bake boots the
lane's image, and must power itself off; its disk is then read without booting (debugfs),
and a copy-on-write overlay of it (a linked clone) boots with the VM's own NoCloud seed:
a new instance-id, cloud-init afresh, no apt at all. The recipe bakes no driver and no
runtime: NVIDIA's repository and Ollama's downloads are not reachable from this lane.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from lane import BOOT_TIMEOUT, FIRST_BOOT_TIMEOUT, Disk

from provision.cloudinit.bake import bake_record, recipe_digest, render_bake
from provision.cloudinit.render import render_meta_data, render_user_data
from provision.inventory.model import Inventory
from provision.sim.qemu_guest import QemuGuest

pytestmark = [pytest.mark.slow, pytest.mark.guest]
RECIPE, VM, IID = "lane-base", "lane", "aihost-lane-g1"
# what apt-get update prints to cloud-init's output (kept in the journal)
APT_UPDATE = re.compile(r"^(Hit|Get|Ign):\d+ http", re.M)


def _inventory() -> Inventory:
    recipe = {"from": "local:import/debian-12.raw", "host": "pve1", "distro": "debian-12"}
    vm = {"host": "pve1", "template": RECIPE, "distro": "debian-12", "runtime": "none"}
    return Inventory.model_validate(
        {
            "hosts": {"pve1": {"api": "sim"}},
            "bake": {RECIPE: {**recipe, "driver": None, "runtime": "none"}},
            "vms": {VM: {**vm, "cores": 2, "memory_gb": 2, "disk_gb": 40}},
        }
    )


def _bake(image: Path, workdir: Path, inv: Inventory, digest: str) -> QemuGuest:
    """Boot the bake; it must power off by itself (QEMU exits: -no-reboot)."""
    bake = QemuGuest(image, workdir, name="bake")
    bake.write_cidata(
        render_bake(inv, RECIPE, digest).text,
        render_meta_data(f"bake-{RECIPE}", f"aihost-bake-{digest[:16]}"),
    )
    start = time.monotonic()
    bake.start()
    try:
        powered_off = bake.wait_exit(BOOT_TIMEOUT + FIRST_BOOT_TIMEOUT)
    finally:
        bake.stop()
    print(f"\nguest lane: bake to power-off {time.monotonic() - start:.0f} s")
    serial = bake.serial_text()
    assert powered_off, f"the bake did not power off: {serial[-3000:]}"
    assert "reboot: Power down" in serial, serial[-3000:]  # powered off, not rebooted
    return bake


def _check_baked_disk(disk: Disk, record: dict[str, Any]) -> None:
    """What the bake left: baked.json; no cloud-init logs or seed, no aihost state, an
    empty machine-id. (cloud-init's final modules after the clean still write their
    semaphores under /var/lib/cloud/instances/<bake's id>: harmless to a new instance-id.)"""
    assert json.loads(disk.read("/etc/aihost/baked.json") or "{}") == record
    assert disk.read("/etc/machine-id") == ""  # empty, not missing: no first boot next
    for log in ("/var/log/cloud-init.log", "/var/log/cloud-init-output.log"):
        assert disk.read(log) is None, log  # --logs
    assert disk.read("/var/lib/cloud/seed") is None  # --seed
    assert disk.names("/var/lib/aihost") is None  # the bake's own state file is gone
    print(f"\nguest lane: /var/lib/cloud after the bake: {disk.names('/var/lib/cloud')}")


def _boot_clone(clone: QemuGuest, inv: Inventory) -> None:
    """Boot a linked clone of the baked disk with the VM's own seed to cloud-init done."""
    user_data = render_user_data(inv, VM, instance_id=IID).text
    assert "packages:" not in user_data and "package_update: false" in user_data
    clone.write_cidata(user_data, render_meta_data(VM, IID))
    start = time.monotonic()
    clone.start()
    clone.wait_agent(BOOT_TIMEOUT)
    run = clone.exec(["cloud-init", "status", "--wait"], timeout=FIRST_BOOT_TIMEOUT)
    print(f"\nguest lane: VM of the baked disk to cloud-init done {time.monotonic() - start:.0f} s")
    assert run.exitcode == 0, run.out + run.err


def test_a_bake_powers_off_cleaned_and_its_clone_boots_afresh_without_apt(
    image: Path, tmp_path: Path
) -> None:
    """The bake's first boot records baked.json, cleans cloud-init (logs, machine-id,
    seed) and powers off; a linked clone with a new instance-id runs cloud-init and aihost's
    first boot afresh to done, with no apt-get at all and a machine-id of its own."""
    inv = _inventory()
    digest = recipe_digest(inv, RECIPE)
    record = bake_record(RECIPE, inv.bake[RECIPE], digest)
    bake = _bake(image, tmp_path / "bake", inv, digest)
    disk = Disk(bake.overlay, tmp_path)
    try:
        _check_baked_disk(disk, record)
    finally:
        disk.remove()
    clone = QemuGuest(image, tmp_path / "clone", name="vm", base=bake.overlay)
    try:
        _boot_clone(clone, inv)
        result = json.loads(clone.read_file("/run/cloud-init/result.json") or "{}")
        assert result["v1"]["errors"] == [], result
        state = json.loads(clone.read_file("/var/lib/aihost/state.json") or "{}")
        assert (state["instance_id"], state["phase"], state["status"]) == (IID, "done", "ok")
        assert json.loads(clone.read_file("/etc/aihost/baked.json") or "{}") == record
        machine_id = (clone.read_file("/etc/machine-id") or "").strip()
        assert re.fullmatch(r"[0-9a-f]{32}", machine_id), machine_id
        log = clone.read_file("/var/log/cloud-init.log") or ""
        assert IID in log and f"aihost-bake-{digest[:16]}" not in log, log[-3000:]
        assert "apt-get" not in log, [line for line in log.splitlines() if "apt-get" in line]
        output = clone.read_file("/var/log/cloud-init-output.log") or ""
        assert f"aihost: first boot of {VM} done" in output, output[-2000:]
        _check_no_apt_and_no_first_boot(clone, output)
    finally:
        clone.stop()


def _check_no_apt_and_no_first_boot(clone: QemuGuest, output: str) -> None:
    """The bake's boot (its journal stays on the disk) ran apt-get update, the clone's
    ran none; the clone's boot is no systemd first boot and leaves no failed unit."""
    journal = ["journalctl", "-D", "/var/log/journal", "--no-pager", "-o", "cat", "-b"]
    baking = clone.exec([*journal, "-1"]).out
    booted = clone.exec([*journal, "0"]).out
    assert APT_UPDATE.search(baking), "the bake's boot should show apt-get update's output"
    assert not APT_UPDATE.search(booted + output), APT_UPDATE.findall(booted + output)
    assert "Populated /etc with preset unit settings" not in booted
    failed = clone.exec(["systemctl", "--failed", "--no-legend", "--plain"]).out
    assert failed.strip() == "", failed
