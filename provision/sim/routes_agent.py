"""Guest agent endpoints (answered by the guest MODEL in provision.sim.guest) and
cloudinit/dump."""

from __future__ import annotations

from typing import Any

from provision.sim import guest, guest_net, guest_netcfg, model_store, qemu_bridge, store_turns
from provision.sim import vmconfig as vc
from provision.sim.context import Ctx, Handler, Route
from provision.sim.guest_disk import baked_record
from provision.sim.guest_state import STATE_PATH, Timing
from provision.sim.http import fail, param_fail
from provision.sim.lifecycle import generated_network, generated_user_data
from provision.sim.pci import parse_prop


def _ip(vmid: str, vm: dict[str, Any]) -> str | None:
    """The first NIC's IPv4 address (with prefix): what the network-config applied at the
    guest's boots gave it (provision.sim.guest_netcfg), or the simulator's DHCP lease."""
    record, config = vm["guest"], vm["config"]
    if "network_applied" in record:
        mac = guest_net.mac_of(config.get("net0", ""), int(vmid), 0)
        found = guest_netcfg.first_nic_address(record["network_applied"], "eth0", mac)
    else:  # a fixture's VM, running before the simulator saw it boot: its ipconfig0
        found = parse_prop(config.get("ipconfig0", "")).get("ip", guest_netcfg.DHCP)
    if found != guest_netcfg.DHCP:
        return found
    number = int(vmid)
    return f"10.10.{(number // 250) % 250}.{number % 250 + 2}"


def _timing(ctx: Ctx, vm: dict[str, Any]) -> Timing:
    """How far the VM's first boot is (provision.sim.guest_timeline): seconds since this
    instance's first boot began, under the guest_* durations, with its turn at the node's
    model store and the model bytes it finds there (provision.sim.store_turns)."""
    began = vm["guest"].get("first_boot_at") or vm["started_at"] or ctx.now
    turn = store_turns.turn(ctx.world, ctx.durations, vm)
    return store_turns.timing(vm, ctx.durations, ctx.now - float(began), turn)


def _pull(vm: dict[str, Any], timing: Timing) -> dict[str, Any] | None:
    """The first boot's models_pull with the bytes its turn at the store found there."""
    pull = vm["guest"].get("models_pull")
    if not pull:
        return pull
    total = sum(int(size) for size in (pull.get("models") or {}).values())
    stored = timing.stored_bytes
    return {**pull, "stored_bytes": stored, "downloaded_bytes": max(0, total - stored)}


def view(ctx: Ctx) -> tuple[str, dict[str, Any], guest.GuestView]:
    """The guest model's view of the request's VM; refused unless the agent answers."""
    vmid = str(ctx.params["vmid"])
    vm = vc.vm_record(ctx.world, ctx.node(), vmid)
    if "agent" not in vm["config"]:  # qemu-server's agent_available, in its order
        raise fail("No QEMU guest agent configured")
    if vm["status"] != "running":
        raise fail(f"VM {vmid} is not running")
    devices = {d["id"]: d for d in ctx.world["nodes"][vm["node"]]["pci"]}
    gpus = [
        {"name": devices[d]["gpu"]["name"], "memory_mib": devices[d]["gpu"]["memory_mib"], "pci": d}  # noqa: E501
        for d in vm.get("pci_in_use", [])
        if d in devices and devices[d].get("gpu")
    ]
    record = vm["guest"]
    timing = _timing(ctx, vm)
    gview = guest.GuestView(
        vmid=int(vmid),
        config=dict(vm["config"]),
        user_data=record["user_data"],
        meta_data=record["meta_data"],
        gpus=gpus,
        seconds_since_start=ctx.now - float(vm["started_at"] or ctx.now),
        boot_delay=float(ctx.durations.get("boot", 0.0)),
        ip=_ip(vmid, vm),
        running=True,
        network_config=record["network_config"],
        first_boots=int(record["first_boots"]),
        models_pull=_pull(vm, timing),
        timing=timing,
        baked=baked_record(vm),
        image_packages=frozenset((vm.get("disk") or {}).get("packages") or ()),
    )
    if not guest.agent_available(gview):
        raise fail(guest.AGENT_NOT_RUNNING, delay=_ping_wait(ctx, vm["config"]))
    model_store.settle(ctx.world, vm, guest.read_file(gview, STATE_PATH))
    return vmid, vm, gview


def _ping_wait(ctx: Ctx, config: dict[str, str]) -> float:
    """How long qemu-server waits before "QEMU guest agent is not running": QemuServer/
    Agent.pm `assert_agent_available` -> `qga_check_running` sends guest-ping with timeout
    3 (QMPClient.pm `mux_timeout`: "got timeout") when the VM has the agent's socket; it
    has one only when started with the agent enabled (QemuServer.pm `config_to_command`),
    else Monitor.pm `qmp_cmd` dies at once ("unable to open monitor socket"). The wait is
    the `qga_ping_timeout` duration (3 s by default, scaled or 0 like task durations)."""
    if not guest.agent_enabled(config):
        return 0.0
    return max(0.0, float(ctx.durations.get("qga_ping_timeout", 0.0)))


def ping(ctx: Ctx) -> Any:
    """POST .../agent/ping."""
    view(ctx)
    return {"result": {}}


def agent_exec(ctx: Ctx) -> Any:
    """POST .../agent/exec: runs in the model at once; the result waits for exec-status.
    A program the guest lacks fails the call itself (qemu-server API2/Qemu/Agent.pm `exec`
    -> QemuServer/Agent.pm `qemu_exec`/`agent_cmd`: HTTP 500 "Agent error: ...")."""
    _vmid, vm, gview = view(ctx)
    command = ctx.params.get("command")
    argv = command if isinstance(command, list) else [command] if command else []
    if not argv:
        raise param_fail({"command": "property is missing and it is not optional"})
    try:
        result = guest.exec_command(gview, [str(a) for a in argv], ctx.params.get("input-data"))
    except guest.SpawnError as exc:  # qemu-server QemuServer/Agent.pm check_agent_error
        raise fail(f"Agent error: {exc}") from None
    ctx.world["counters"]["exec"] += 1
    pid = ctx.world["counters"]["exec"]
    execs = vm["guest"]["exec"]
    execs[str(pid)] = {"exitcode": result.exitcode, "out": result.out, "err": result.err}
    for old in sorted(execs, key=int)[:-50]:
        del execs[old]
    return {"pid": pid}


def exec_status(ctx: Ctx) -> Any:
    """GET .../agent/exec-status?pid=N."""
    _vmid, vm, _gview = view(ctx)
    found = vm["guest"]["exec"].get(str(ctx.params.get("pid")))
    if found is None:
        raise fail("Agent error: Invalid parameter 'pid'")
    out: dict[str, Any] = {"exited": 1, "exitcode": found["exitcode"]}
    if found["out"]:
        out["out-data"] = found["out"]
    if found["err"]:
        out["err-data"] = found["err"]
    return out


def file_read(ctx: Ctx) -> Any:
    """GET .../agent/file-read?file=PATH (qemu-server PVE/API2/Qemu/Agent.pm, file-read:
    guest-file-open fails as check_agent_error reports it, "Agent error: DESC")."""
    _vmid, _vm, gview = view(ctx)
    path = str(ctx.params.get("file", ""))
    content = guest.read_file(gview, path)
    if content is None:  # qemu-ga's guest-file-open error text
        raise fail(
            f"Agent error: failed to open file '{path}' (mode: 'r'): No such file or directory"
        )
    return {"content": content, "bytes-read": len(content.encode())}


def interfaces(ctx: Ctx) -> Any:
    """GET .../agent/network-get-interfaces."""
    _vmid, _vm, gview = view(ctx)
    return {"result": guest.network_interfaces(gview)}


def cloudinit_dump(ctx: Ctx) -> Any:
    """GET .../cloudinit/dump?type=user|network|meta: the generated part only."""
    vmid = str(ctx.params["vmid"])
    vm = vc.vm_record(ctx.world, ctx.node(), vmid)
    config = vc.effective(vm)
    kind = ctx.params.get("type")
    if kind == "user":
        return generated_user_data(config)
    if kind == "network":
        return generated_network(config)
    user, network = generated_user_data(config), generated_network(config)
    return f"instance-id: {guest.instance_id(user, None, network)}\n"


def _bridged(operation: str, handler: Handler) -> Handler:
    """With `sim serve --guest qemu` a real QEMU guest answers (provision.sim.qemu_bridge),
    after qemu-server's assert_agent_available checks; else the guest model."""

    def route(ctx: Ctx) -> Any:
        bridge = qemu_bridge.bridge_for(ctx.state_dir)
        if bridge is None:
            return handler(ctx)
        vmid = str(ctx.params["vmid"])
        vm = vc.vm_record(ctx.world, ctx.node(), vmid)
        if "agent" not in vm["config"]:
            raise fail("No QEMU guest agent configured")
        if vm["status"] != "running":
            bridge.stop(vmid)
            raise fail(f"VM {vmid} is not running")
        try:
            return qemu_bridge.answer(bridge.guest(vmid, vm), operation, ctx.params)
        except qemu_bridge.SimAgentError as exc:
            raise fail(str(exc)) from None

    route.__doc__ = handler.__doc__
    return route


_Q = "/nodes/{node}/qemu/{vmid}"
ROUTES: list[Route] = [
    ("POST", f"{_Q}/agent/ping", _bridged("ping", ping)),
    ("POST", f"{_Q}/agent/exec", _bridged("exec", agent_exec)),
    ("GET", f"{_Q}/agent/exec-status", _bridged("exec-status", exec_status)),
    ("GET", f"{_Q}/agent/network-get-interfaces", _bridged("network-get-interfaces", interfaces)),
    ("GET", f"{_Q}/agent/file-read", _bridged("file-read", file_read)),
    ("GET", f"{_Q}/cloudinit/dump", cloudinit_dump),
]
