"""The real first-boot scripts with a baked image: the bake itself (install, baked.json,
`cloud-init clean`) and a VM of the baked template skipping what /etc/aihost/baked.json
says it has, run in test_firstboot_flow's sandbox (stubs for what changes the machine)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from test_firstboot_flow import Sandbox, _need
from test_render_helpers import inventory, parse

from provision.cloudinit import render_user_data
from provision.cloudinit.bake import bake_record, render_bake
from provision.inventory.model import Inventory

RECIPE = {"from": "local:import/noble.qcow2", "host": "pve", "driver": "580"}


def _box(tmp_path: Path, doc: dict[str, Any], baked: dict[str, Any] | None) -> Sandbox:
    _need("python3", "jq", "curl")
    box = Sandbox(tmp_path, doc)
    etc = tmp_path / "etc"
    etc.mkdir()
    for script in ("bin/aihost-state", "bin/aihost-firstboot"):
        text = (tmp_path / script).read_text().replace("/etc/aihost", str(etc))
        text = text.replace("/etc/machine-id", str(etc / "machine-id"))
        assert not re.search(r"(?<![\w.-])/etc/machine-id", text)  # never the host's
        (tmp_path / script).write_text(text)
    if baked is not None:
        (etc / "baked.json").write_text(json.dumps(baked))
    box.stub(
        "aihost-install-driver",
        f'echo "install-driver" >>"$LOG"; touch {tmp_path}/aihost/reboot-required',
        "bin",
    )  # noqa: E501
    box.stub("aihost-setup-runtime", 'echo "setup $1" >>"$LOG"', "bin")
    box.stub("aihost-health", 'echo "{}"', "bin")
    box.stub("cloud-init", 'echo "cloud-init $*" >>"$LOG"')
    return box


def _record(**recipe: Any) -> dict[str, Any]:
    inv = Inventory.model_validate(
        {"hosts": {"pve": {"api": "sim"}}, "bake": {"base": {**RECIPE, **recipe}}}
    )
    return bake_record("base", inv.bake["base"], "ab" * 32)


def test_a_bake_installs_records_baked_json_and_cleans_cloud_init(tmp_path: Path) -> None:
    inv = Inventory.model_validate({"hosts": {"pve": {"api": "sim"}}, "bake": {"base": RECIPE}})
    doc = parse(render_bake(inv, "base", "ab" * 32).text)
    box = _box(tmp_path, doc, None)
    spec = next(f["content"] for f in doc["write_files"] if f["path"] == "/etc/aihost/bake.json")
    (tmp_path / "etc/bake.json").write_text(spec)
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    run = box.run("bin/aihost-firstboot")
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "etc/baked.json").read_text()) == json.loads(spec)
    # empty, not missing or "uninitialized": a clone's boot is no systemd first boot
    # (machine-id(5)), which would preset units (a real Debian clone then failed
    # systemd-networkd-wait-online after 2 minutes: the guest lane's bake test)
    assert (tmp_path / "etc/machine-id").read_text() == ""
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls[-3:] == [
        "install-driver",
        "setup install",
        "cloud-init clean --logs --machine-id --seed",
    ]
    assert not (tmp_path / "aihost").exists()  # the bake's state and markers are gone


def test_a_vm_of_a_baked_image_skips_driver_reboot_and_runtime(tmp_path: Path) -> None:
    box = _box(tmp_path, parse(render_user_data(inventory(), "box").text), _record())
    run = box.run("bin/aihost-firstboot")
    assert run.returncode == 0, run.stderr
    state = box.state()
    assert (state["phase"], state["status"]) == ("done", "ok")
    statuses = {phase: entry["status"] for phase, entry in state["phases"].items()}
    assert statuses == {
        "driver": "skipped",
        "reboot": "skipped",
        "runtime": "skipped",
        "models": "ok",
        "health": "ok",
        "done": "ok",
    }
    calls = (tmp_path / "calls.log").read_text()
    assert "install-driver" not in calls and "setup serve" in calls and "setup runtime" not in calls


def test_a_baked_image_of_another_driver_and_runtime_installs_them(tmp_path: Path) -> None:
    baked = _record(driver="570", versions={"ollama": "0.30.0"})
    box = _box(tmp_path, parse(render_user_data(inventory(), "box").text), baked)
    assert box.run("bin/aihost-firstboot").returncode == 0
    assert (box.state()["phase"], box.state()["status"]) == ("reboot", "pending")
    assert "install-driver" in (tmp_path / "calls.log").read_text()
    run = box.run("cloud/scripts/per-boot/aihost-boot")  # the boot after the reboot
    assert run.returncode == 0, run.stderr
    assert box.state()["phases"]["runtime"]["status"] == "ok"
    assert "setup runtime" in (tmp_path / "calls.log").read_text()
