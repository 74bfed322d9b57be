"""/var/lib/aihost/state.json of the simulated guest (part of the guest MODEL).

The real guest's aihost-firstboot and aihost-boot scripts (templates/scripts/) record each
first-boot phase (driver, reboot, runtime, models, health, then done) with the failing
command's error text. The model reaches the verdict those scripts reach from what it knows
(the user-data, the attached GPUs, whether the driver loads) and writes the same fields,
with the error texts the scripts print. No file without aihost's first-boot script.

With a Timing (provision.sim.guest_timeline), the file shows the first boot as it stands
that many seconds after it began: the phases done by then, the current one "running"
(the reboot "pending", as aihost-firstboot leaves it), and in the models phase the
download's progress as the real setup scripts record it (`download`: model, completed,
total bytes, index, count). Baked phases are "skipped", as the real scripts record them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provision.sim.guest_disk import bake_spec, skips
from provision.sim.guest_downloads import download_error
from provision.sim.guest_runtime import runtime_of
from provision.sim.guest_timeline import Timeline, download_progress, timeline
from provision.sim.guest_userdata import CloudConfig

STATE_PATH = "/var/lib/aihost/state.json"
FIRSTBOOT = "/usr/local/sbin/aihost-firstboot"
DRIVER = "/usr/local/sbin/aihost-install-driver"
SETUP = "/usr/local/sbin/aihost-setup-runtime"
CUDA = "/usr/local/sbin/aihost-install-cuda"
BOOT = "/var/lib/cloud/scripts/per-boot/aihost-boot"
SKIPPED = {"status": "skipped", "error": None}
NO_GPU = (
    "aihost: no NVIDIA GPU on this VM's PCI bus: is the GPU attached (hostpci) and the "
    "VM power-cycled since?"
)


@dataclass(frozen=True)
class Timing:
    """How far the first boot is: seconds since it began under these durations; what the
    VM's disk has baked (h18-bake) and bytes of its models already stored (h18-store)."""

    durations: Mapping[str, float]
    elapsed: float
    baked: frozenset[str] = field(default_factory=frozenset)
    stored_bytes: int = 0
    models_not_before: float = 0.0  # its turn at the node's model store (store_turns)
    holders: tuple[tuple[float, str], ...] = ()  # (until, who) it waits for meanwhile


def image_skips(cloud: CloudConfig, baked: dict[str, Any] | None) -> frozenset[str]:
    """What first boot skips on this VM's image: the phases its disk has baked that the
    scripts' checks accept (guest_disk), and the packages phase when cloud-init runs no
    apt at all (no `packages`, no package_update: cloud-init's cc_package_update_upgrade_
    install updates whenever either is given)."""
    skipped: set[str] = set()
    if DRIVER in cloud.files and skips(cloud.files.get(FIRSTBOOT, ""), "driver", baked):
        skipped |= {"driver", "reboot"}
    if SETUP in cloud.files and skips(cloud.files.get(BOOT, ""), "runtime", baked):
        skipped.add("runtime")
    if cloud.valid and not cloud.packages and not cloud.apt_update:
        skipped.add("packages")
    return frozenset(skipped)


def first_boot_line(cloud: CloudConfig, timing: Timing) -> Timeline:
    """The first boot's phases for this user-data, in the order the scripts run them."""
    runtime = runtime_of(cloud)
    return timeline(
        timing.durations,
        driver=DRIVER in cloud.files,
        cuda=CUDA in cloud.files,
        runtime=runtime.name if runtime is not None and SETUP in cloud.files else None,
        models=runtime.models if runtime is not None else (),
        baked=timing.baked,
        stored_bytes=timing.stored_bytes,
        models_not_before=timing.models_not_before,
    )


def state_json(
    cloud: CloudConfig,
    instance_id: str,
    gpus: int,
    gpu_ok: bool,
    reachable: Callable[[str], bool],
    on_gpu: Callable[[str], bool],
    pull: dict[str, Any] | None = None,
    timing: Timing | None = None,
    baked: dict[str, Any] | None = None,
) -> str | None:
    """The state file's text, or None when the user-data has no aihost first boot (or,
    with timing, when its first phase has not begun yet). pull
    (provision.sim.model_store.first_boot) adds the models phase's bytes: downloaded, and
    found in the node's model store. baked: the disk's /etc/aihost/baked.json
    (guest_disk), whose matching phases the scripts record as skipped (and take no time)."""
    if not cloud.valid or FIRSTBOOT not in cloud.files or bake_spec(cloud) is not None:
        return None  # a bake's own state file is gone (rm -rf) when it powers off
    phases: dict[str, dict[str, Any]] = {}
    failed = _run(cloud, gpus, gpu_ok, (reachable, on_gpu), phases, baked)
    if pull and "models" in phases:
        phases["models"]["downloaded_bytes"] = pull["downloaded_bytes"]
        phases["models"]["stored_bytes"] = pull["stored_bytes"]
    if not failed:
        phases["done"] = {"status": "ok", "error": None}
    extra: dict[str, Any] = {}
    if timing is not None:
        phases, extra = _as_of(phases, first_boot_line(cloud, timing), timing)
        if not phases:
            return None
    last = next(reversed(phases))
    state = {
        "phase": last,
        "status": phases[last]["status"],
        "error": phases[last]["error"],
        "instance_id": instance_id,
        "updated": "1970-01-01T00:00:00+00:00",
        "phases": phases,
    }
    state.update(extra)
    return json.dumps(state) + "\n"


def _as_of(
    verdicts: dict[str, dict[str, Any]], line: Timeline, timing: Timing
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The phases as recorded by timing.elapsed: those ended with their verdict (baked ones
    "skipped"), the current one running, later ones not yet; and in the models phase the
    download's progress (`download`) or, before its turn at the model store, the VM it
    waits for (`store_wait`, as aihost-state store-lock notes it)."""
    spans = {span.phase: span for span in line.spans}
    t, shown = timing.elapsed, dict[str, dict[str, Any]]()
    for phase, verdict in verdicts.items():
        span = spans.get(phase)
        if span is None:  # "done": once every phase ended
            if t >= line.end:
                shown[phase] = verdict
            break
        if t >= span.end:
            skipped = span.skipped and verdict["status"] == "ok"
            shown[phase] = {"status": "skipped", "error": None} if skipped else verdict
            continue
        if t >= span.start:
            shown[phase] = {"status": "pending" if phase == "reboot" else "running", "error": None}
            pull = float(timing.durations.get("guest_pull_s_per_gb", 0.0))
            waits_for = next((who for until, who in timing.holders if t < until), None)
            if phase == "models" and t < span.fetch_start and waits_for:
                return shown, {"store_wait": {"holder": waits_for}}
            if phase == "models" and t < span.fetch_end:
                progress = download_progress(span, t, pull)
                return shown, {"download": progress} if progress is not None else {}
        break
    return shown, {}


def _run(
    cloud: CloudConfig,
    gpus: int,
    gpu_ok: bool,
    probes: tuple[Callable[[str], bool], Callable[[str], bool]],
    phases: dict[str, dict[str, Any]],
    baked: dict[str, Any] | None,
) -> bool:
    """Fill phases in the scripts' order; True when one failed (the scripts stop there)."""
    reachable, on_gpu = probes
    skipped = image_skips(cloud, baked)

    def record(phase: str, error: str | tuple[int, str] | None, tool: str) -> bool:
        code, text = error if isinstance(error, tuple) else (1, error)
        phases[phase] = {
            "status": "failed" if text else "ok",
            "error": f"{tool} exited {code}: {text}" if text else None,
        }
        return text is not None

    if "driver" in skipped:
        phases["driver"] = phases["reboot"] = dict(SKIPPED)
    elif DRIVER in cloud.files:
        if record("driver", None if gpus else NO_GPU, "aihost-install-driver"):
            return True
        phases["reboot"] = {"status": "ok", "error": None}
    runtime = runtime_of(cloud)
    if runtime is not None and SETUP in cloud.files:
        if "runtime" in skipped:
            phases["runtime"] = dict(SKIPPED)
        else:
            record("runtime", None, "aihost-setup-runtime")
        if record("models", _models_error(cloud, runtime.name, reachable), "aihost-setup-runtime"):
            return True
    return record(
        "health",
        _health_error(cloud, runtime.name if runtime else None, gpu_ok, on_gpu),
        "aihost-health",
    )


def _models_error(
    cloud: CloudConfig, runtime: str, reachable: Callable[[str], bool]
) -> tuple[int, str] | None:
    """setup-<runtime>.sh models: a GGUF download must arrive with the inventory's SHA-256
    (guest_downloads); a GGUF by path must already be in the guest (the model has no files
    beyond write_files); vLLM's unit fails without a working GPU."""
    setup = cloud.files.get(SETUP, "")
    if runtime == "llamacpp":
        values = _assignments(setup)
        if "MODEL_URL" in values:
            return download_error(values["MODEL_URL"], values.get("MODEL_SHA256", ""))
        path = values.get("MODEL", "")
        if path not in cloud.files:
            return 1, (
                f"aihost: the GGUF model {path} is not in the guest (model_path names a "
                "file the image must have; or give llamacpp.hf_repo and hf_file with "
                "sha256)"
            )
    if runtime == "vllm" and not reachable("vllm"):
        return 1, "aihost: vllm.service failed: RuntimeError: No CUDA GPUs are available"
    return None


def _assignments(script: str) -> dict[str, str]:
    """NAME=value lines of a shell script, single-quoted values unquoted (the renderer's
    sh filter quotes with '...')."""
    values = {}
    for line in script.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.isidentifier() and name.isupper():
            values[name] = value.strip("'\"")
    return values


def _health_error(
    cloud: CloudConfig, runtime: str | None, gpu_ok: bool, on_gpu: Callable[[str], bool]
) -> str | None:
    """aihost-health's reason on stderr, as the rendered script prints it."""
    health = cloud.files.get("/usr/local/bin/aihost-health", "")
    expected = "GPU_EXPECTED=1" in health.splitlines()
    if expected and not gpu_ok:
        return "aihost-health: nvidia-smi sees no GPU"
    if expected and runtime is not None and not on_gpu(runtime):
        return f"aihost-health: {runtime} runs on the CPU, not the GPU (CPU fallback)"
    return None
