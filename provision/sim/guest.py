"""A MODEL of a guest for the simulator: no VM runs, nothing is installed or booted.

The simulator answers the guest agent endpoints from what a real guest would make of the
VM's config and the cloud-init user-data it sees ("Guest model rules" in the sim contract):
- the agent answers only with `agent: 1` (or `enabled=1`), a running VM past its boot
  delay, and user-data that installs `qemu-guest-agent` through `packages`;
- `nvidia-smi` works only with a GPU attached and an NVIDIA driver installed by the
  user-data; under Secure Boot (OVMF with `pre-enrolled-keys=1`) only Canonical-signed
  modules (`ubuntu-drivers install`) load, a DKMS-built one is rejected as on real guests;
- `/usr/local/bin/aihost-health` exists only if the user-data writes it, and reports the
  GPU and the runtime whose systemd unit the user-data writes.
Only the commands handled in `exec_command` exist; failures use the real texts and exit
codes. qemu-ga's guest-exec runs the program itself, with no shell: a program that does
not exist cannot be spawned and the agent call fails (SpawnError, glib's
"Failed to execute child process" text); only inside `sh -c` is it bash's exit 127.
Helpers: guest_userdata (what the user-data installs), guest_nvidia (nvidia-smi, lspci),
guest_net (qemu-ga's interface list).
"""

from __future__ import annotations

import json
import shlex

import yaml

from provision.sim import guest_nvidia as nv
from provision.sim.guest_facts import (
    AGENT_NOT_RUNNING,
    CMDLINE,
    HEALTH_PATH,
    ExecResult,
    Guest,
    GuestView,
    agent_available,
    agent_enabled,
    first_boots_after,
    guest_of,
    instance_id,
    secure_boot,
)
from provision.sim.guest_health import health, on_gpu, reachable
from provision.sim.guest_net import network_interfaces, property_flags
from provision.sim.guest_runtime import runtime_of
from provision.sim.guest_state import FIRSTBOOT, STATE_PATH, first_boot_line, state_json

_SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/bash"}

__all__ = [
    "AGENT_NOT_RUNNING",
    "ExecResult",
    "GuestView",
    "agent_available",
    "agent_enabled",
    "exec_command",
    "first_boots_after",
    "instance_id",
    "network_interfaces",
    "property_flags",
    "read_file",
    "secure_boot",
]


class SpawnError(Exception):
    """qemu-ga's guest-exec could not start the program (qga/commands.c `qmp_guest_exec`:
    g_spawn_async_with_pipes failed); str() is the agent's error description."""

    def __init__(self, program: str) -> None:
        # glib gspawn.c: _("Failed to execute child process “%s” (%s)"), argv[0], strerror;
        # qemu-ga before 9.1 wraps it in QERR_QGA_COMMAND_FAILED (Ubuntu 24.04: 8.2).
        super().__init__(
            "Guest agent command failed, error was 'Failed to execute child process "
            f"\u201c{program}\u201d (No such file or directory)'"
        )
        self.program = program


def exec_command(view: GuestView, command: list[str], input_data: str | None = None) -> ExecResult:
    """Run a command in the modelled guest as qemu-ga's guest-exec does: the program itself,
    no shell; SpawnError when it does not exist in the guest."""
    if command and command[0] in _SHELLS and len(command) >= 3 and command[1] == "-c":
        return _shell(guest_of(view), command[2], input_data)
    argv = [str(a) for a in command]
    result = _run(guest_of(view), argv, input_data)
    if result is None:
        raise SpawnError(argv[0] if argv else "")
    return result


def _shell(guest: Guest, script: str, input_data: str | None) -> ExecResult:
    """`sh -c "A | grep [-i] X"`: one command, optionally filtered by grep."""
    stages = [shlex.split(stage) for stage in script.split("|")]
    result = _run(guest, stages[0], input_data) or _not_found(stages[0][0] if stages[0] else "")
    for stage in stages[1:]:
        if not stage or stage[0] != "grep":
            return _not_found(stage[0] if stage else "")
        flags = [a for a in stage[1:] if a.startswith("-")]
        pattern = next((a for a in stage[1:] if not a.startswith("-")), "")
        fold = "-i" in flags
        lines = [
            line
            for line in result.out.splitlines(keepends=True)
            if (pattern.lower() in line.lower() if fold else pattern in line)
        ]
        result = ExecResult(0 if lines else 1, "".join(lines), result.err)
    return result


def _not_found(program: str) -> ExecResult:
    if "/" in program:
        return ExecResult(127, "", f"bash: {program}: No such file or directory\n")
    return ExecResult(127, "", f"bash: {program}: command not found\n")


def _run(guest: Guest, argv: list[str], input_data: str | None) -> ExecResult | None:
    """The program's result, or None when it does not exist in the guest."""
    if not argv:
        return None
    program, args = argv[0], argv[1:]
    name = program.rsplit("/", 1)[-1] if program.startswith(("/usr/bin/", "/bin/")) else program
    if name == "nvidia-smi":
        if guest.driver is None:
            return None
        code, out, err = nv.nvidia_smi(
            args, guest.driver, guest.view.gpus, guest.gpu_ok, guest.view.vmid
        )
        return ExecResult(code, out, err)
    if program in (HEALTH_PATH, "aihost-health") and HEALTH_PATH in guest.cloud.files:
        return health(guest)
    handlers = {
        "cloud-init": _cloud_init,
        "aihost-sim-first-boots": _first_boots,
        "lspci": _lspci,
        "cat": _cat,
        "systemctl": _systemctl,
        "hostname": _hostname,
        "mokutil": _mokutil,
        "echo": lambda _g, a, _i: ExecResult(0, " ".join(a) + "\n", ""),
    }
    handler = handlers.get(name)
    if handler is None:
        return None
    return handler(guest, args, input_data)


def _cloud_init(guest: Guest, args: list[str], _input: str | None) -> ExecResult:
    if args[:1] == ["status"]:
        if not guest.cloud.valid:
            return ExecResult(1, "status: error\n", "")
        return ExecResult(0, "status: done\n", "")
    if args[:1] == ["query"] and len(args) == 2:
        key = args[1].replace("_", "-")
        view = guest.view
        if key in ("instance-id", "v1.instance-id"):
            return ExecResult(
                0, instance_id(view.user_data, view.meta_data, view.network_config) + "\n", ""
            )
        if key in ("local-hostname", "v1.local-hostname"):
            return ExecResult(0, _name(guest) + "\n", "")
        return ExecResult(1, "", f"ERROR: Undefined instance-data key {args[1]}\n")
    return ExecResult(
        2,
        "",
        "usage: /usr/bin/cloud-init [-h] [--version] [--debug] "
        "[--force] {init,modules,single,query,...} ...\n",
    )


def _first_boots(guest: Guest, _args: list[str], _input: str | None) -> ExecResult:
    return ExecResult(0, f"{guest.view.first_boots}\n", "")


def _lspci(guest: Guest, _args: list[str], _input: str | None) -> ExecResult:
    q35 = guest.view.config.get("machine", "").startswith(("q35", "pc-q35"))
    return ExecResult(0, nv.lspci_lines(guest.view.gpus, q35), "")


def _files(guest: Guest) -> dict[str, str]:
    view = guest.view
    files = dict(guest.cloud.files)
    files["/proc/cmdline"] = CMDLINE
    files["/etc/hostname"] = _name(guest) + "\n"
    iid = instance_id(view.user_data, view.meta_data, view.network_config)
    files["/var/lib/cloud/data/instance-id"] = iid + "\n"
    runtime = runtime_of(guest.cloud)
    state = state_json(
        guest.cloud,
        iid,
        len(view.gpus),
        guest.gpu_ok,
        lambda name: reachable(guest, name),
        lambda name: (
            on_gpu(guest, name) or (name == "ollama" and not runtime.models) if runtime else False
        ),
        pull=view.models_pull,
        timing=view.timing,
        baked=view.baked,
    )
    if state is not None:
        files[STATE_PATH] = state
    if guest.cloud.valid and _first_boot_over(guest):  # cloud-final finished this boot
        files["/run/cloud-init/result.json"] = (
            json.dumps(
                {
                    "v1": {
                        "datasource": "DataSourceNoCloud [seed=/dev/sr0][dsmode=net]",
                        "errors": [],
                    }
                }
            )
            + "\n"
        )
    return files


def _first_boot_over(guest: Guest) -> bool:
    """True once the first boot's last phase ended (always without a timing)."""
    timing = guest.view.timing
    if timing is None or FIRSTBOOT not in guest.cloud.files:
        return True
    return timing.elapsed >= first_boot_line(guest.cloud, timing).end


def read_file(view: GuestView, path: str) -> str | None:
    """A file of the modelled guest as qemu-ga's guest-file-read gives it (None: absent)."""
    return _files(guest_of(view)).get(path)


def _cat(guest: Guest, args: list[str], input_data: str | None) -> ExecResult:
    paths = [a for a in args if a != "-"]
    if not paths:
        return ExecResult(0, input_data or "", "")
    files = _files(guest)
    out, err = [], []
    for path in paths:
        if path in files:
            out.append(files[path])
        else:
            err.append(f"cat: {path}: No such file or directory\n")
    return ExecResult(1 if err else 0, "".join(out), "".join(err))


def _unit_states(guest: Guest) -> dict[str, str]:
    states = {"qemu-guest-agent": "active", "ssh": "active", "cloud-init": "active"}
    if guest.driver is not None:
        states["nvidia-persistenced"] = "active" if guest.gpu_ok else "failed"
    runtime = runtime_of(guest.cloud)
    if runtime is not None:
        states[runtime.unit.removesuffix(".service")] = (
            "active" if reachable(guest, runtime.name) else "failed"
        )
    return states


def _systemctl(guest: Guest, args: list[str], _input: str | None) -> ExecResult:
    if not args or args[0] != "is-active":
        verb = args[0] if args else ""
        return ExecResult(1, "", f"Unknown command verb '{verb}'.\n")
    units = [a.removesuffix(".service") for a in args[1:] if not a.startswith("-")]
    states = _unit_states(guest)
    lines = [states.get(unit, "inactive") for unit in units]
    code = 0 if lines and all(s == "active" for s in lines) else 3
    return ExecResult(code, "".join(f"{s}\n" for s in lines), "")


def _name(guest: Guest) -> str:
    try:
        meta = yaml.safe_load(guest.view.meta_data or "") or {}
    except yaml.YAMLError:
        meta = {}
    name = meta.get("local-hostname") if isinstance(meta, dict) else None
    return str(
        name or guest.cloud.hostname or guest.view.config.get("name") or f"VM{guest.view.vmid}"
    )


def _hostname(guest: Guest, _args: list[str], _input: str | None) -> ExecResult:
    return ExecResult(0, _name(guest) + "\n", "")


def _mokutil(guest: Guest, args: list[str], _input: str | None) -> ExecResult:
    if args != ["--sb-state"]:
        return ExecResult(1, "", "Usage: mokutil [OPTIONS]\n")
    state = "enabled" if secure_boot(guest.view.config) else "disabled"
    return ExecResult(0, f"SecureBoot {state}\n", "")
