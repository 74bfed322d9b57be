"""The guest checks after first boot are independent: the runtime's health and the
guest's addresses are asked while nvidia-smi runs, and no check outlives the call."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from provision.errors import GuestError
from provision.guest.agent import GuestAgent
from provision.guest.verify import verify_guest
from provision.pve.vm import Vm

DONE = json.dumps({"phase": "done", "status": "ok", "error": None, "instance_id": "i"})
HEALTH = {"runtime": {"reachable": True, "on_gpu": True, "models": ["llama3.1:8b"]}}
GPU_LINE = "NVIDIA GeForce RTX 4090, 24564 MiB, 580.65.06\n"


class _Guest:
    """An agent whose nvidia-smi exits only once the health check has started (or after
    a second, when nothing else runs meanwhile)."""

    def __init__(self, nvidia_exit: int = 0) -> None:
        self.health_started = threading.Event()
        self.nvidia_exit = nvidia_exit
        self.log: list[str] = []
        self.lock = threading.Lock()
        self.pids: dict[int, str] = {}

    def _say(self, what: str) -> None:
        with self.lock:
            self.log.append(what)

    def post(self, path: str, **params: Any) -> Any:
        if path.endswith("/agent/ping"):
            return {}
        assert path.endswith("/agent/exec")
        program = params["command"][0].rsplit("/", 1)[-1]
        self._say(f"exec {program}")
        if program == "aihost-health":
            self.health_started.set()
        pid = 1000 + len(self.pids)
        self.pids[pid] = program
        return {"pid": pid}

    def get(self, path: str, **params: Any) -> Any:
        if path.endswith("/agent/file-read"):
            return {"content": DONE}
        if path.endswith("/agent/network-get-interfaces"):
            self._say("addresses")
            return [
                {
                    "name": "eth0",
                    "ip-addresses": [{"ip-address": "10.0.0.5", "ip-address-type": "ipv4"}],
                }
            ]
        program = self.pids[int(params["pid"])]
        if program == "nvidia-smi":
            self.health_started.wait(1.0)
            self._say("nvidia-smi exited")
            return {"exited": 1, "exitcode": self.nvidia_exit, "out-data": GPU_LINE}
        return {"exited": 1, "exitcode": 0, "out-data": json.dumps(HEALTH)}


def _verify(guest: _Guest) -> Any:
    agent = GuestAgent(Vm(guest, "pve1", 100), sleep=lambda _s: None)
    return verify_guest(
        agent, expect_gpu=True, runtime="ollama", models=["llama3.1:8b"], agent_timeout=60
    )


def test_the_health_check_runs_while_nvidia_smi_does():
    guest = _Guest()
    report = _verify(guest)
    assert guest.log.index("exec aihost-health") < guest.log.index("nvidia-smi exited")
    assert report.gpus[0].name == "NVIDIA GeForce RTX 4090"
    assert report.models == ["llama3.1:8b"] and report.addresses == ["10.0.0.5"]


def test_a_failed_check_leaves_no_check_running():
    guest = _Guest(nvidia_exit=9)
    with pytest.raises(GuestError, match="nvidia-smi failed"):
        _verify(guest)
    running = [t.name for t in threading.enumerate() if t.name.startswith("aihost-")]
    assert running == []
