"""`sim serve --guest qemu`: the guest agent endpoints of the simulator answered by a real
guest booted in QEMU (provision.sim.qemu_guest) instead of the guest MODEL.

Each simulated VM that runs gets a QEMU guest booted from one image with the cloud-init
files the simulator recorded at its start (user-data, meta-data, network-config: the VM's
cidata ISO or snippets) and its NIC's MAC address, so `aihost vm up` verifies a real
guest. The guest boots on the first agent call after a start (a new start, e.g. after
`--reprovision`, boots it again with the new files) and is stopped when the simulated VM
no longer runs; a reboot inside the guest (cloud-init's power_state) ends QEMU
(-no-reboot) and the next agent call boots it again, as Proxmox keeps a VM running
through a guest reboot. Replies follow qemu-server's
PVE/API2/Qemu/Agent.pm (agent_cmd and check_agent_error: "Agent error: DESC"; exec-status
decodes out-data and err-data; file-read returns content and bytes-read).
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

from provision.sim import guest_net
from provision.sim.qemu_guest import QemuGuest

AGENT_NOT_RUNNING = "QEMU guest agent is not running"
_BRIDGES: dict[str, Bridge] = {}


class Bridge:
    """The QEMU guests of one simulator (keyed by its state dir)."""

    def __init__(self, image: Path, workdir: Path) -> None:
        self.image = image
        self.workdir = workdir
        self.guests: dict[str, tuple[QemuGuest, Any]] = {}
        self.lock = threading.Lock()

    def guest(self, vmid: str, vm: dict[str, Any]) -> QemuGuest:
        """The running QEMU guest of a running simulated VM (booted when needed)."""
        with self.lock:
            found = self.guests.get(vmid)
            if found is not None and found[1] != vm.get("started_at"):
                # the simulated VM was started again (a reboot, or a shutdown and a start):
                # the guest shuts down as it would have then, and boots anew
                found[0].shut_down()
                found = None
            if found is None:
                qemu = QemuGuest(self.image, self.workdir / f"vm{vmid}", name="vm")
                found = (qemu, vm.get("started_at"))
                self.guests[vmid] = found
            qemu = found[0]
            if not qemu.running():
                record = vm["guest"]
                qemu.write_cidata(
                    record.get("user_data") or "",
                    record.get("meta_data") or f"instance-id: sim-{vmid}\n",
                    record.get("network_config"),
                )
                qemu.mac = guest_net.mac_of(vm["config"].get("net0", ""), int(vmid), 0)
                qemu.start()
            return qemu

    def stop(self, vmid: str) -> None:
        """Power off the QEMU guest of a VM that is no longer running."""
        with self.lock:
            found = self.guests.pop(vmid, None)
        if found is not None:
            found[0].stop()

    def stop_all(self) -> None:
        """Kill every QEMU guest (the simulator stops)."""
        for vmid in list(self.guests):
            self.stop(vmid)


def register(state_dir: Path, image: Path, workdir: Path) -> Bridge:
    """Answer the agent endpoints of the simulator with this state dir from QEMU guests."""
    bridge = Bridge(image, workdir)
    _BRIDGES[str(Path(state_dir).resolve())] = bridge
    return bridge


def unregister(state_dir: Path) -> None:
    """Back to the guest model; the QEMU guests are stopped."""
    bridge = _BRIDGES.pop(str(Path(state_dir).resolve()), None)
    if bridge is not None:
        bridge.stop_all()


def bridge_for(state_dir: Path) -> Bridge | None:
    """The bridge of a simulator, or None (the guest model answers)."""
    return _BRIDGES.get(str(Path(state_dir).resolve())) if _BRIDGES else None


def _agent_call(qemu: QemuGuest, command: str, arguments: dict[str, Any] | None = None) -> Any:
    """One agent command; SimAgentError with the text qemu-server would die with."""
    if not qemu.ping():
        raise SimAgentError(AGENT_NOT_RUNNING)
    try:
        return qemu.agent.call(command, arguments, timeout=30)
    except RuntimeError as exc:
        raise SimAgentError(f"Agent error: {exc}") from None
    except OSError:
        qemu.agent.close()
        raise SimAgentError(AGENT_NOT_RUNNING) from None


class SimAgentError(Exception):
    """An agent failure as the API reports it (HTTP 500 with this message)."""


def answer(qemu: QemuGuest, operation: str, params: dict[str, Any]) -> Any:
    """The API reply of one agent endpoint from the real guest."""
    if operation == "ping":
        _agent_call(qemu, "guest-ping")
        return {"result": {}}
    if operation == "exec":
        command = params.get("command")
        argv = [str(a) for a in (command if isinstance(command, list) else [command])]
        args: dict[str, Any] = {"path": argv[0], "arg": argv[1:], "capture-output": True}
        if params.get("input-data") is not None:
            args["input-data"] = base64.b64encode(str(params["input-data"]).encode()).decode()
        return {"pid": _agent_call(qemu, "guest-exec", args)["pid"]}
    if operation == "exec-status":
        status = dict(_agent_call(qemu, "guest-exec-status", {"pid": int(params["pid"])}))
        for key in ("out-data", "err-data"):
            if status.get(key):
                status[key] = base64.b64decode(status[key]).decode("utf-8", "replace")
        return {k: (1 if v is True else 0 if v is False else v) for k, v in status.items()}
    if operation == "file-read":
        return _file_read(qemu, str(params.get("file", "")))
    if operation == "network-get-interfaces":
        return {"result": _agent_call(qemu, "guest-network-get-interfaces")}
    raise SimAgentError(f"Agent error: {operation} is not bridged")


def _file_read(qemu: QemuGuest, path: str) -> dict[str, Any]:
    handle = _agent_call(qemu, "guest-file-open", {"path": path, "mode": "r"})
    chunks: list[bytes] = []
    try:
        while True:
            part = _agent_call(qemu, "guest-file-read", {"handle": handle, "count": 1 << 20})
            chunks.append(base64.b64decode(part.get("buf-b64", "")))
            if part.get("eof"):
                break
    finally:
        _agent_call(qemu, "guest-file-close", {"handle": handle})
    data = b"".join(chunks)
    return {"content": data.decode("utf-8", "replace"), "bytes-read": len(data)}
