"""How long an agent call takes when the guest agent does not answer (qemu-server
QemuServer/Agent.pm `assert_agent_available` -> `qga_check_running`: guest-ping with a
3 s timeout when the VM has the agent's socket, an immediate failure when it has none)."""

from __future__ import annotations

import time

import pytest
import requests
from aihost_testing import token_client
from proxmoxer.core import ResourceException

from provision.sim.server import SimServer

USER_DATA = "#cloud-config\npackages: [qemu-guest-agent]\n"


def _started(sim, api, clock, **config: str):
    """VM 100 cloned from the template, configured, started, its guest booting for 60 s."""
    requests.post(
        f"{sim.server.url}/_sim/durations",
        json={"boot": 60},
        verify=str(sim.server.cert_path),
        timeout=10,
    ).raise_for_status()
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=100, name="wait", full=1)
    clock.advance(30)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    (sim.state_dir / "storage" / "local" / "snippets" / "u.yaml").write_text(USER_DATA)
    vm = api.nodes("pve1").qemu(100)
    vm.config.put(cicustom="user=local:snippets/u.yaml", **config)
    vm.status.start.post()
    clock.advance(2)  # the start (1.5 s) is done, the guest boots
    assert vm.status.current.get()["status"] == "running"
    return vm


def _refusal(call, clock) -> tuple[str, float]:
    """The error text of a refused agent call and the (simulated) seconds it took."""
    before = clock.now
    with pytest.raises(ResourceException) as caught:
        call()
    assert caught.value.status_code == 500
    return caught.value.content, clock.now - before


def test_an_agent_that_does_not_answer_is_waited_for_three_seconds(clocked):
    sim, clock = clocked
    api = sim.api()
    vm = _started(sim, api, clock)
    calls = [
        vm.agent.ping.post,
        lambda: vm.agent.exec.post(command=["true"]),
        lambda: vm.agent("file-read").get(file="/etc/hostname"),
        lambda: vm.agent("exec-status").get(pid=1),
        vm.agent("network-get-interfaces").get,
    ]
    for call in calls:  # each call passes 3 s: 17 s into the boot in the end
        assert _refusal(call, clock) == ("QEMU guest agent is not running", 3.0)
    clock.advance(60)
    before = clock.now
    assert vm.agent.ping.post() == {"result": {}}
    assert clock.now == before  # an answering agent costs no wait


def test_a_vm_without_the_agent_device_is_refused_at_once(clocked):
    sim, clock = clocked
    api = sim.api()
    vm = _started(sim, api, clock, agent="0")
    clock.advance(60)
    assert _refusal(vm.agent.ping.post, clock) == ("QEMU guest agent is not running", 0.0)


def test_no_agent_option_or_a_stopped_vm_is_refused_at_once(clocked):
    sim, clock = clocked
    api = sim.api()
    vm = _started(sim, api, clock)
    vm.status.stop.post()
    clock.advance(5)
    assert vm.status.current.get()["status"] == "stopped"
    assert _refusal(vm.agent.ping.post, clock) == ("VM 100 is not running", 0.0)
    vm.config.put(delete="agent")
    assert _refusal(vm.agent.ping.post, clock) == ("No QEMU guest agent configured", 0.0)


def test_the_wait_is_real_time_and_follows_the_duration(tmp_path):
    server = SimServer(
        tmp_path, sftp_port=None, durations={"qga_ping_timeout": 0.3, "boot": 60}, auth_delay=0
    ).start()
    try:
        api = token_client(server)
        upid = api.nodes("pve1").qemu(9000).clone.post(newid=100, name="w", full=1)
        api.nodes("pve1").tasks(upid).status.get()
        vm = api.nodes("pve1").qemu(100)
        vm.status.start.post()
        started = time.monotonic()
        with pytest.raises(ResourceException, match="QEMU guest agent is not running"):
            vm.agent.ping.post()
        assert time.monotonic() - started >= 0.3
    finally:
        server.stop()
