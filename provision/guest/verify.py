"""Prove a started VM works: agent, driver sees the GPU, runtime answers with its models."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from provision.errors import GuestError
from provision.guest.agent import GuestAgent, ProgramNotFound
from provision.guest.firstboot import Events, wait_first_boot
from provision.pve.node import Node
from provision.pve.session import Background, Session

NVIDIA_QUERY = [
    "nvidia-smi",
    "--query-gpu=name,memory.total,driver_version",
    "--format=csv,noheader",
]
HEALTH = ["/usr/local/bin/aihost-health"]


@dataclass
class GpuSeen:
    """One line of nvidia-smi's query output."""

    name: str
    memory: str
    driver: str


@dataclass
class GuestReport:
    """What the guest proved."""

    agent_seconds: float
    gpus: list[GpuSeen] = field(default_factory=list)
    runtime: str = "none"
    runtime_url: str | None = None
    models: list[str] = field(default_factory=list)
    settings: dict[str, int | None] = field(default_factory=dict)
    addresses: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return asdict(self)


def verify_vm(
    session: Session,
    name: str,
    vmid: int,
    *,
    agent_timeout: float,
    expect_gpu: bool,
    runtime: str = "none",
    models: Sequence[str] = (),
    label: str | None = None,
    instance_id: str | None = None,
) -> GuestReport:
    """The one guest check of inventory VM name (as vmid on its host's node), used by
    `vm up` and by a GPU swap: verify_guest through its agent; progress lines start with
    label (default: name)."""
    host = session.inv.vms[name].host
    vm = Node(session.client(host), session.inv.node_of(host)).vm(vmid)
    prefix = label or name
    agent = GuestAgent(vm, clock=session.clock)
    return verify_guest(
        agent,
        expect_gpu=expect_gpu,
        runtime=runtime,
        models=list(models),
        agent_timeout=agent_timeout,
        progress=lambda msg: session.progress(f"{prefix}: {msg}"),
        instance_id=instance_id,
        settings=session.inv.vms[name].settings,
        events=lambda data: session.events({"vm": name, **data}),
    )


def verify_guest(
    agent: GuestAgent,
    *,
    expect_gpu: bool,
    runtime: str,
    models: list[str],
    agent_timeout: float,
    progress: Callable[[str], None] | None = None,
    instance_id: str | None = None,
    settings: dict[str, int | None] | None = None,
    events: Events | None = None,
) -> GuestReport:
    """Wait for the agent, then check nvidia-smi and the runtime's health; raise GuestError.

    settings: the context length and parallel sequences the runtime must report running
    (Vm.settings; None values are left to the runtime and not checked). events: first
    boot's phase changes and download readings (provision.guest.firstboot)."""
    say = progress or (lambda _msg: None)
    say("verify: waiting for the guest agent")
    report = GuestReport(agent_seconds=agent.wait_ready(agent_timeout, progress))
    wait_first_boot(agent, max(0.0, agent_timeout - report.agent_seconds), say, instance_id, events)
    # The checks are independent: the runtime's health and the guest's addresses are asked
    # while nvidia-smi runs (each a few agent round trips), and none outlives this call.
    health = Background("aihost-health", lambda: _health(agent)) if runtime != "none" else None
    addresses = Background("aihost-addresses", agent.addresses)
    try:
        if expect_gpu:
            say("verify: nvidia-smi")
            report.gpus = _gpus(agent)
        if health is not None:
            say(f"verify: {runtime} health")
            _check_runtime(report, runtime, health.result(), expect_gpu, models, settings or {})
        report.addresses = addresses.result()
    finally:
        for work in (health, addresses):
            if work is not None:
                work.join()
    return report


def _check_runtime(
    report: GuestReport,
    runtime: str,
    health: dict[str, Any],
    expect_gpu: bool,
    models: list[str],
    settings: dict[str, int | None],
) -> None:
    """The runtime answers (on the GPU when the VM has one) with the inventory's settings
    and models, as aihost-health reported it; GuestError otherwise."""
    state = health.get("runtime", {})
    report.runtime = runtime
    report.runtime_url = state.get("url")
    report.models = list(state.get("models") or [])
    if not state.get("reachable"):
        raise GuestError(
            f"the {runtime} runtime does not answer in the guest",
            hint="first boot may still be downloading it; see `journalctl -u "
            f"{_unit(runtime)}` in the guest",
        )
    if expect_gpu and not state.get("on_gpu", False):
        raise GuestError(
            f"{runtime} runs on the CPU, not the GPU",
            hint="the driver may have failed after a reboot (CUDA error 999); restart the "
            f"{_unit(runtime)} service or reboot the VM",
        )
    report.settings = {k: state.get(k) for k in ("context", "parallel")}
    _check_settings(runtime, settings, report.settings)
    missing = [m for m in models if not _has_model(report.models, m)]
    if missing:
        raise GuestError(
            f"models not present in {runtime}: {', '.join(missing)}",
            hint="pulls can take long on first boot; re-run `aihost vm up` later",
        )


SETTING_NAMES = {
    "ollama": {"context": "OLLAMA_CONTEXT_LENGTH", "parallel": "OLLAMA_NUM_PARALLEL"},
    "vllm": {"context": "--max-model-len", "parallel": "--max-num-seqs"},
    "llamacpp": {"context": "-c / -np (context per slot)", "parallel": "-np"},
}


def _gpus(agent: GuestAgent) -> list[GpuSeen]:
    """The GPUs nvidia-smi lists in the guest; GuestError when the driver is missing or
    fails (a missing program is the agent's spawn error: qemu-ga runs no shell)."""
    try:
        result = agent.run(NVIDIA_QUERY)
    except ProgramNotFound as absent:
        raise GuestError(
            f"nvidia-smi is not installed in the guest ({absent.reason})",
            hint="the NVIDIA driver is not installed in the guest; check the user-data's "
            "driver step (`cloud-init status --long` in the guest)",
        ) from None
    if result.exitcode != 0:
        detail = (result.err or result.out).strip().splitlines()
        raise GuestError(
            f"nvidia-smi failed in the guest (exit {result.exitcode}): "
            f"{detail[0] if detail else 'no output'}",
            hint=_nvidia_hint(result.exitcode),
        )
    return [_parse_gpu(line) for line in result.out.strip().splitlines() if line]


def _check_settings(
    runtime: str, wanted: dict[str, int | None], reported: dict[str, int | None]
) -> None:
    """The running runtime reports what the inventory configured. Only Ollama's context
    may be unreported: /api/ps has it once a model is loaded, and none may be."""
    for key, value in wanted.items():
        seen = reported.get(key)
        if (
            value is None
            or seen == value
            or (seen is None and (runtime, key) == ("ollama", "context"))
        ):
            continue
        what = f"runs with {key} {seen}" if seen is not None else f"reports no {key}"
        raise GuestError(
            f"{runtime} {what}, the inventory says {value}",
            hint=f"its {SETTING_NAMES.get(runtime, {}).get(key, key)} does not match the "
            f"inventory: re-provision the VM (vm up --reprovision)",
        )


def _health(agent: GuestAgent) -> dict[str, Any]:
    try:
        result = agent.run(HEALTH)
    except ProgramNotFound as absent:
        raise GuestError(
            f"{HEALTH[0]} is not installed in the guest ({absent.reason})",
            hint="the user-data that writes it may not have run; check cloud-init's log",
        ) from None
    try:
        data = json.loads(result.out)
    except ValueError:
        raise GuestError(
            f"aihost-health gave no JSON (exit {result.exitcode}): {result.err.strip()[:200]}",
            hint="the user-data that installs it may not have run; check cloud-init's log",
        ) from None
    if not isinstance(data, dict):
        raise GuestError("aihost-health printed something other than a JSON object")
    return data


def _parse_gpu(line: str) -> GpuSeen:
    parts = [p.strip() for p in line.split(",")]
    while len(parts) < 3:
        parts.append("")
    return GpuSeen(name=parts[0], memory=parts[1], driver=parts[2])


def _nvidia_hint(exitcode: int) -> str:
    if exitcode == 9:
        return (
            "the driver cannot reach a GPU: is the GPU attached (hostpci) and is Secure Boot "
            "off or the module signed?"
        )
    return "see `dmesg | grep -i nvidia` in the guest"


def _unit(runtime: str) -> str:
    return {"llamacpp": "llama-server"}.get(runtime, runtime)


def _has_model(present: list[str], wanted: str) -> bool:
    base = wanted if ":" in wanted else f"{wanted}:latest"
    return wanted in present or base in present
