"""Guest agent endpoints wired to the guest MODEL: the agent answers only after the boot
delay when the config enables it and the user-data installs it; exec and exec-status;
nvidia-smi sees a passed-through GPU."""

from __future__ import annotations

import pytest
import requests
from proxmoxer.core import ResourceException

USER_DATA = """#cloud-config
packages: [qemu-guest-agent, nvidia-driver-550]
"""
GPU_4090 = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"


def _vm(sim, api, user_data: str = USER_DATA, *, gpu: bool = False, clock=None):
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=100, name="llm", full=1)
    if clock is not None:
        clock.advance(30)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    (sim.state_dir / "storage" / "local" / "snippets" / "u.yaml").write_text(user_data)
    vm = api.nodes("pve1").qemu(100)
    vm.config.put(
        cicustom="user=local:snippets/u.yaml", ipconfig0="ip=192.168.1.50/24,gw=192.168.1.1"
    )  # noqa: E501
    if gpu:
        api.cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090])
        vm.config.put(machine="q35", hostpci0="mapping=rtx4090,pcie=1")
    return vm


def _exec(sim, vm, *command: str) -> dict:
    pid = vm.agent.exec.post(command=list(command))["pid"]
    return vm.agent("exec-status").get(pid=pid)


def test_agent_answers_after_the_boot_delay(clocked):
    sim, clock = clocked
    api = sim.api()
    vm = _vm(sim, api, clock=clock)
    with pytest.raises(ResourceException) as caught:
        vm.agent.ping.post()
    assert caught.value.content == "VM 100 is not running"
    vm.status.start.post()
    clock.advance(2)  # start (1.5 s) done, guest still booting (boot delay 3 s)
    with pytest.raises(ResourceException) as caught:
        vm.agent.ping.post()
    assert caught.value.content == "QEMU guest agent is not running"
    clock.advance(5)
    assert vm.agent.ping.post() == {"result": {}}
    ifaces = vm.agent("network-get-interfaces").get()["result"]
    addresses = [a["ip-address"] for i in ifaces for a in i.get("ip-addresses", [])]
    assert "192.168.1.50" in addresses


def test_agent_not_installed_by_user_data(sim):
    api = sim.api()
    vm = _vm(sim, api, "#cloud-config\npackages: [curl]\n")
    sim.wait(api, vm.status.start.post())
    with pytest.raises(ResourceException) as caught:
        vm.agent.ping.post()
    assert caught.value.status_code == 500
    assert caught.value.content == "QEMU guest agent is not running"


def test_nvidia_smi_sees_the_passed_through_gpu(sim):
    api = sim.api()
    vm = _vm(sim, api, gpu=True)
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"
    result = _exec(sim, vm, "nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader")
    assert result["exited"] == 1 and result["exitcode"] == 0
    assert result["out-data"].startswith("NVIDIA GeForce RTX 4090, 24564 MiB")


def test_nvidia_smi_without_a_gpu_fails_like_a_real_guest(sim):
    api = sim.api()
    vm = _vm(sim, api)
    sim.wait(api, vm.status.start.post())
    result = _exec(sim, vm, "nvidia-smi")
    assert result["exitcode"] == 9
    assert "couldn't communicate with the NVIDIA driver" in result["out-data"] + result.get(
        "err-data", ""
    )  # noqa: E501


def test_exec_of_a_program_the_guest_lacks_is_an_agent_error(sim):
    """qemu-ga's guest-exec spawns the program without a shell, so a missing one fails the
    call (qemu-server QemuServer/Agent.pm check_agent_error): HTTP 500, no pid, no 127."""
    api = sim.api()
    vm = _vm(sim, api, "#cloud-config\npackages: [qemu-guest-agent]\n")
    sim.wait(api, vm.status.start.post())
    server = sim.server
    for program in ("nvidia-smi", "/usr/local/bin/aihost-health"):
        reply = requests.post(
            f"{server.url}/api2/json/nodes/pve1/qemu/100/agent/exec",
            data={"command": [program, "--version"]},
            verify=str(server.cert_path),
            timeout=10,
            headers={"Authorization": f"PVEAPIToken={server.token_id}={server.token_secret}"},
        )
        assert (reply.status_code, reply.json()["data"]) == (500, None)
        assert reply.json()["message"] == (
            "Agent error: Guest agent command failed, error was 'Failed to execute child "
            f"process \u201c{program}\u201d (No such file or directory)'\n"
        )
    in_shell = _exec(sim, vm, "sh", "-c", "nvidia-smi")  # a shell says it in its exit code
    assert in_shell["exitcode"] == 127


def test_cloudinit_dump_shows_only_the_generated_part(sim):
    api = sim.api()
    vm = _vm(sim, api)
    vm.config.put(ciuser="ubuntu")
    user = vm.cloudinit.dump.get(type="user")
    assert user.startswith("#cloud-config") and "user: ubuntu" in user
    assert "qemu-guest-agent" not in user  # cicustom is ignored by the dump


def test_cidata_iso_attached_as_cdrom_is_what_the_guest_reads(sim, tmp_path):
    from provision.delivery.iso import build_cidata_iso

    api = sim.api()
    sim.wait(api, api.nodes("pve1").qemu(9000).clone.post(newid=100, name="iso", full=1))
    image = build_cidata_iso({"user-data": USER_DATA.encode(), "meta-data": b"instance-id: a\n"})
    (tmp_path / "seed.iso").write_bytes(image)
    with (tmp_path / "seed.iso").open("rb") as handle:
        sim.wait(
            api, api.nodes("pve1").storage("local").upload.post(content="iso", filename=handle)
        )
    vm = api.nodes("pve1").qemu(100)
    vm.config.put(ide2="local:iso/seed.iso,media=cdrom")
    volids = [c["volid"] for c in api.nodes("pve1").storage("local-lvm").content.get()]
    assert "local-lvm:vm-100-cloudinit" not in volids  # the replaced drive is gone
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"
    assert vm.agent.ping.post() == {"result": {}}
    assert _exec(sim, vm, "cloud-init", "query", "instance-id")["out-data"].strip() == "a"
