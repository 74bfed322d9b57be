"""A reboot is a shutdown only (qemu-server PVE/QemuServer.pm `vm_reboot`); the restart is
a separate qmstart task of root@pam started by `qm cleanup` (PVE/CLI/qm.pm `cleanup`),
which may fail while the reboot task says OK. Also the node's task list
(pve-manager PVE/API2/Tasks.pm `node_tasks`) where that qmstart shows, and the start's
default timeout (PVE/QemuServer/Helpers.pm `config_aware_timeout`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml
from proxmoxer.core import ResourceException

FIXTURES = Path(__file__).resolve().parents[2] / "provision" / "sim" / "fixtures"
GPU_4090 = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"


def _clone(sim, api, vmid: int):
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=vmid, name=f"vm{vmid}", full=1)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    return api.nodes("pve1").qemu(vmid)


def _restarts(api, vmid: int) -> list[dict]:
    return api.nodes("pve1").tasks.get(vmid=vmid, typefilter="qmstart", source="all")


def test_a_stopped_vm_is_refused_before_any_task(sim):
    vm = _clone(sim, sim.api(), 100)
    with pytest.raises(ResourceException) as caught:
        vm.status.reboot.post()
    assert (caught.value.status_code, caught.value.content) == (500, "VM 100 not running")


def test_the_reboot_task_only_shuts_down_and_qm_cleanup_starts_it_as_root(clocked):
    sim, clock = clocked
    api = sim.api()
    vm = api.nodes("pve1").qemu(100)
    api.nodes("pve1").qemu(9000).clone.post(newid=100, name="r", full=1)
    clock.advance(10)
    vm.status.start.post()
    clock.advance(10)
    vm.config.put(memory="4096")  # pending until the VM is off
    reboot = vm.status.reboot.post()
    assert reboot.split(":")[5:8] == ["qmreboot", "100", sim.server.token_id]
    clock.advance(2.0)  # the shutdown took qmreboot's 2 s; the restart (1.5 s) runs now
    assert api.nodes("pve1").tasks(reboot).status.get()["exitstatus"] == "OK"
    assert vm.status.current.get()["status"] == "stopped"
    assert vm.config.get(current=1)["memory"] == "4096"
    restart, first = _restarts(api, 100)  # running ones first
    assert restart["status"] == "RUNNING" and restart["user"] == "root@pam"
    assert first["status"] == "OK" and first.get("tokenid") == "aihost"
    assert "tokenid" not in restart
    assert restart["upid"].split(":")[5:8] == ["qmstart", "100", "root@pam"]
    clock.advance(1.5)
    assert api.nodes("pve1").tasks(restart["upid"]).status.get()["exitstatus"] == "OK"
    assert vm.status.current.get()["status"] == "running"
    finished = _restarts(api, 100)[0]
    assert finished["status"] == "OK" and finished["endtime"] >= finished["starttime"]


def test_a_missing_snippet_fails_the_restart_while_the_reboot_says_ok(sim):
    api = sim.api()
    vm = _clone(sim, api, 100)
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"
    vm.config.put(cicustom="user=local:snippets/gone.yaml")
    assert sim.wait(api, vm.status.reboot.post())["exitstatus"] == "OK"
    [restart, first_start] = _restarts(api, 100)
    assert "tokenid" not in restart and first_start["tokenid"] == "aihost"
    assert restart["status"] == "volume 'local:snippets/gone.yaml' does not exist"
    assert vm.status.current.get()["status"] == "stopped"
    log = [line["t"] for line in api.nodes("pve1").tasks(restart["upid"]).log.get()]
    assert log[-1] == "TASK ERROR: volume 'local:snippets/gone.yaml' does not exist"


def test_a_gpu_taken_meanwhile_fails_the_restart(sim):
    api = sim.api()
    a, b = _clone(sim, api, 100), _clone(sim, api, 101)
    api.cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090])
    for vm in (a, b):
        vm.config.put(machine="q35")
    b.config.put(hostpci0="mapping=rtx4090,pcie=1")
    assert sim.wait(api, a.status.start.post())["exitstatus"] == "OK"
    assert sim.wait(api, b.status.start.post())["exitstatus"] == "OK"
    a.config.put(hostpci0="mapping=rtx4090,pcie=1")  # pending: A runs
    assert sim.wait(api, a.status.reboot.post())["exitstatus"] == "OK"
    assert _restarts(api, 100)[0]["status"] == (
        "PCI device '0000:01:00.0' already in use by VMID '101'"
    )
    assert a.status.current.get()["status"] == "stopped"


def test_the_shutdown_is_bounded_by_timeout_and_checks_the_lock_in_the_worker(clocked):
    sim, clock = clocked
    api = sim.api()
    vm = api.nodes("pve1").qemu(100)
    api.nodes("pve1").qemu(9000).clone.post(newid=100, name="r", full=1)
    clock.advance(10)
    vm.status.start.post()
    clock.advance(10)
    slow = vm.status.reboot.post(timeout=1)  # the guest needs qmreboot's 2 s
    clock.advance(5)
    status = api.nodes("pve1").tasks(slow).status.get()
    assert status["exitstatus"] == "VM quit/powerdown failed - got timeout"
    assert vm.status.current.get()["status"] == "running"
    assert _restarts(api, 100)[0]["upid"] != slow and len(_restarts(api, 100)) == 1
    sim.root().nodes("pve1").qemu(100).config.put(lock="backup")
    locked = vm.status.reboot.post()  # answered with a task: the check runs in the worker
    clock.advance(5)
    assert api.nodes("pve1").tasks(locked).status.get()["exitstatus"] == "VM is locked (backup)"


def test_the_task_list_shows_root_tasks_only_to_node_auditors(make_sim, tmp_path):
    fixture = yaml.safe_load((FIXTURES / "default.yaml").read_text(encoding="utf-8"))
    fixture["access"]["tokens"]["aihost@pve!own"] = {
        "privsep": 1,
        "acl": [{"path": "/vms/100", "privs": "all"}],
    }
    path = tmp_path / "fixture.yaml"
    path.write_text(yaml.safe_dump(fixture), encoding="utf-8")
    sim = make_sim(path)
    api, own = sim.api(), sim.api("aihost@pve!own")
    vm = _clone(sim, api, 100)
    assert sim.wait(own, own.nodes("pve1").qemu(100).status.start.post())["exitstatus"] == "OK"
    vm.config.put(cicustom="user=local:snippets/gone.yaml")
    sim.wait(own, own.nodes("pve1").qemu(100).status.reboot.post())
    seen = api.nodes("pve1").tasks.get(vmid=100)  # admin token: Sys.Audit on /nodes/pve1
    assert [(t["type"], t["user"]) for t in seen] == [
        ("qmstart", "root@pam"),
        ("qmreboot", "aihost@pve"),
        ("qmstart", "aihost@pve"),
    ]
    assert {t.get("tokenid") for t in seen[1:]} == {"own"}
    mine = own.nodes("pve1").tasks.get(vmid=100)  # its own tasks only, not root's restart
    assert [t["type"] for t in mine] == ["qmreboot", "qmstart"]
    reboots = own.nodes("pve1").tasks.get(vmid=100, typefilter="qmreboot", limit=1)
    assert [t["status"] for t in reboots] == ["OK"]
    assert api.nodes("pve1").tasks.get(vmid=100, errors=1)[0]["user"] == "root@pam"
    assert api.nodes("pve1").tasks.get(vmid=101) == []


def test_start_defaults_to_the_config_aware_timeout(clocked):
    sim, clock = clocked
    root = sim.root()
    vm = root.nodes("pve1").qemu(100)
    root.nodes("pve1").qemu(9000).clone.post(newid=100, name="t", full=1)
    clock.advance(10)
    requests.post(
        f"{sim.server.url}/_sim/durations",
        json={"qmstart": 100},
        verify=str(sim.server.cert_path),
        timeout=10,
    ).raise_for_status()
    vm.config.put(memory="4096")  # with the template's net0: 30 + 5 = 35 s
    short = vm.status.start.post()
    clock.advance(200)
    assert root.nodes("pve1").tasks(short).status.get()["exitstatus"].endswith("got timeout")
    vm.config.put(machine="q35", hostpci0="0000:01:00,pcie=1")  # 30 x 4 + 5 = 125 s
    passthrough = vm.status.start.post()
    clock.advance(200)
    assert root.nodes("pve1").tasks(passthrough).status.get()["exitstatus"] == "OK"
