"""A VM being cloned or created, as Proxmox shows it: until the task ends its config is
only what clone_vm / create_vm write first (the lock), so its name, description and tags
are unknown; the whole config appears when the task ends, and a failed task removes it."""

from __future__ import annotations

import requests


def _listed(api, vmid: int, node: str = "pve1") -> dict | None:
    return next((r for r in api.nodes(node).qemu.get() if r["vmid"] == vmid), None)


def test_a_vm_being_cloned_is_the_temporary_file_until_the_task_ends(clocked):
    sim, clock = clocked
    api = sim.api()
    upid = (
        api.nodes("pve1").qemu(9000).clone.post(newid=101, name="busy", full=1, description="mine")
    )
    config = api.nodes("pve1").qemu(101).config.get()
    assert {k: v for k, v in config.items() if k != "digest"} == {
        "description": " qmclone temporary file",
        "lock": "clone",
    }
    row = _listed(api, 101)
    assert row is not None and (row["name"], row["lock"]) == ("VM 101", "clone")
    assert "tags" not in row
    clock.advance(60)
    assert api.nodes("pve1").tasks(upid).status.get()["exitstatus"] == "OK"
    config = api.nodes("pve1").qemu(101).config.get()
    assert (config["name"], config["description"]) == ("busy", "mine")
    assert "lock" not in config and config["scsi0"].startswith("local-lvm:vm-101-disk-0")


def test_a_vm_being_created_holds_only_its_lock_until_the_task_ends(clocked):
    sim, clock = clocked
    api = sim.api()
    upid = api.nodes("pve1").qemu.post(
        vmid=120,
        name="img",
        tags="aihost",
        description="mine",
        scsi0="local-lvm:0,import-from=local:import/noble-server-cloudimg-amd64.qcow2",
    )
    config = api.nodes("pve1").qemu(120).config.get()
    assert {k: v for k, v in config.items() if k != "digest"} == {"lock": "create"}
    row = _listed(api, 120)
    assert row is not None and (row["name"], row["lock"]) == ("VM 120", "create")
    clock.advance(60)
    assert api.nodes("pve1").tasks(upid).status.get()["exitstatus"] == "OK"
    config = api.nodes("pve1").qemu(120).config.get()
    assert (config["name"], config["tags"], config["description"]) == ("img", "aihost", "mine")
    assert "lock" not in config and config["meta"].startswith("creation-qemu=")


def test_a_failed_clone_removes_the_half_made_vm(clocked):
    sim, clock = clocked
    api = sim.api()
    requests.post(
        f"{sim.server.url}/_sim/faults",
        json={"kind": "task_error", "task": "qmclone", "message": "clone failed: no space"},
        verify=str(sim.server.cert_path),
        timeout=10,
    )
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=102, name="doomed", full=1)
    assert _listed(api, 102) is not None
    clock.advance(60)
    assert api.nodes("pve1").tasks(upid).status.get()["exitstatus"] == "clone failed: no space"
    assert _listed(api, 102) is None


def test_a_clone_to_another_node_stays_on_the_source_node_until_it_ends(clocked_two_node):
    sim, clock = clocked_two_node
    api = sim.api()
    api.nodes("pve1").qemu(9000).clone.post(newid=200, name="far", target="pve2", full=1)
    assert _listed(api, 200, "pve1") is not None and _listed(api, 200, "pve2") is None
    clock.advance(60)
    assert _listed(api, 200, "pve1") is None
    assert _listed(api, 200, "pve2")["name"] == "far"
