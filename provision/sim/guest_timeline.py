"""When each first-boot phase of the simulated guest runs (part of the guest MODEL).

The real guest's first boot (templates/scripts/aihost-firstboot.sh.j2, aihost-boot.sh.j2)
runs, after the kernel's boot (`boot`) and cloud-init's `packages` (apt): the NVIDIA
driver install with its DKMS build, a reboot, the runtime's install, the model download,
and the health check (which loads Ollama's first model into VRAM while its other checks
run; vLLM and llama-server load theirs inside the models phase). This module gives each
phase a start and an end in seconds since the VM's first boot began, from the
simulator's durations table:

  guest_apt           cloud-init's package_update + packages (the agent is one of them)
  guest_driver        the driver packages, kernel headers and build tools (apt)
  guest_dkms          DKMS building the NVIDIA module for the next boot's kernel
  guest_cuda          the CUDA toolkit (only with cuda_toolkit)
  guest_reboot        the reboot after the driver (the agent is away meanwhile)
  guest_runtime       the runtime's install; guest_runtime_<name> overrides per runtime
  guest_health        aihost-health besides the model load (nvidia-smi, requests, output)
  guest_health_serial the part of that before Ollama's load starts and after it ends: the
                      rest runs while the model loads (templates/scripts/aihost-health.sh.j2)
  guest_pull_s_per_gb seconds per GB (10^9 bytes) downloaded: 8 / bandwidth in Gbit/s
  guest_load_s_per_gb seconds per GB read from the disk into VRAM: 1 / disk GB/s

All are 0 unless set (tests); REALISTIC is the documented profile (docs/guest-timing.md).
`baked` phases (a disk cloned from a baked template) take 0 s and are "skipped";
`stored_bytes` of the models are already in the model store and not downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provision.sim.guest_models import model_bytes

GB = 10**9
PHASES = ("driver", "reboot", "runtime", "models", "health")
KEYS = (
    "guest_apt",
    "guest_driver",
    "guest_dkms",
    "guest_cuda",
    "guest_reboot",
    "guest_runtime",
    "guest_runtime_ollama",
    "guest_runtime_vllm",
    "guest_runtime_llamacpp",
    "guest_health",
    "guest_health_serial",
    "guest_pull_s_per_gb",
    "guest_load_s_per_gb",
)
# The realistic profile; every figure and its source: docs/guest-timing.md.
_BANDWIDTH_GBIT = 0.1  # a 100 Mbit/s downlink (a choice: set guest_pull_s_per_gb)
_PULL_S_PER_GB = 8 / _BANDWIDTH_GBIT
REALISTIC: dict[str, float] = {
    "guest_apt": 60.0,
    "guest_driver": 90.0,
    "guest_dkms": 100.0,
    "guest_cuda": 300.0,
    "guest_reboot": 30.0,
    "guest_runtime": 60.0,
    "guest_runtime_ollama": 1.1 * _PULL_S_PER_GB + 10.0,  # its 1.1 GB tarball
    "guest_runtime_vllm": (3.3 + 0.84) * _PULL_S_PER_GB + 60.0,  # torch & co. + its wheel
    "guest_runtime_llamacpp": 600.0,
    "guest_health": 3.0 + 0.8,  # nvidia-smi's GPU initialization + the script (measured)
    "guest_health_serial": 0.7,  # measured: before Ollama's load starts and after it ends
    "guest_pull_s_per_gb": _PULL_S_PER_GB,
    "guest_load_s_per_gb": 1 / 0.5,  # a SATA SSD's 500 MB/s
}
PROFILES = {"realistic": REALISTIC}


@dataclass(frozen=True)
class Span:
    """One phase: [start, end) in seconds since first boot began; skipped when baked.
    fetch: the bytes the phase downloads per model (model, total, already there)."""

    phase: str
    start: float
    end: float
    skipped: bool = False
    fetch: tuple[tuple[str, int, int], ...] = ()
    fetch_end: float = 0.0  # the download ends here; the model load follows
    fetch_start: float = 0.0  # the download begins here (later than start: the store's turn)


@dataclass(frozen=True)
class Timeline:
    """The first boot's phases in order, and when the agent answers."""

    spans: tuple[Span, ...]
    agent_from: float  # boot + packages: qemu-guest-agent is one of the packages

    @property
    def end(self) -> float:
        """When first boot is done."""
        return self.spans[-1].end if self.spans else self.agent_from

    def agent_away(self, t: float) -> bool:
        """True while the agent cannot answer: before it is installed, during the reboot."""
        if t < self.agent_from:
            return True
        return any(
            s.phase == "reboot" and not s.skipped and s.start <= t < s.end for s in self.spans
        )


def profile(name: str, scale: float = 1.0) -> dict[str, float]:
    """A named durations profile (KeyError names the choices), times scale."""
    if name not in PROFILES:
        raise KeyError(f"no guest profile {name!r}: choose one of {sorted(PROFILES)}")
    return {key: value * scale for key, value in PROFILES[name].items()}


def _d(durations: Mapping[str, float], key: str) -> float:
    return max(0.0, float(durations.get(key, 0.0)))


def _split(models: Iterable[str], stored_bytes: int) -> tuple[tuple[str, int, int], ...]:
    """(model, size, bytes already stored) per model; the stored bytes fill models in order."""
    left = max(0, stored_bytes)
    out = []
    for name in models:
        size = model_bytes(name)
        have = min(size, left)
        left -= have
        out.append((name, size, have))
    return tuple(out)


def _health(durations: Mapping[str, float], first_load: float) -> float:
    """aihost-health's time: it starts Ollama's load of the first model the moment Ollama
    answers, in the background, runs its other checks meanwhile and waits for the load
    before it reads /api/ps (templates/scripts/aihost-health.sh.j2): the longer of the
    checks and the load with the script's serial part, not their sum."""
    checks = _d(durations, "guest_health")
    if not first_load:
        return checks
    return max(checks, first_load + _d(durations, "guest_health_serial"))


def timeline(
    durations: Mapping[str, float],
    *,
    driver: bool,
    cuda: bool = False,
    runtime: str | None,
    models: Iterable[str] = (),
    baked: frozenset[str] = frozenset(),
    stored_bytes: int = 0,
    models_not_before: float = 0.0,
) -> Timeline:
    """The first boot's phases for a VM whose user-data installs a driver (driver, cuda)
    and a runtime (None: none) serving models; baked phases take 0 s. models_not_before:
    the models phase fetches from then on at the earliest (it waits for its turn at the
    node's model store, provision.sim.store_turns)."""
    agent_from = _d(durations, "boot") + (
        0.0 if "packages" in baked else _d(durations, "guest_apt")
    )
    pull, load = _d(durations, "guest_pull_s_per_gb"), _d(durations, "guest_load_s_per_gb")
    fetch = _split(models, stored_bytes) if runtime else ()
    loads = [size for _name, size, _have in fetch]
    costs: dict[str, float] = {}
    if driver:
        extra = _d(durations, "guest_cuda") if cuda else 0.0
        costs["driver"] = _d(durations, "guest_driver") + _d(durations, "guest_dkms") + extra
        costs["reboot"] = _d(durations, "guest_reboot")
    if runtime:
        own = durations.get(f"guest_runtime_{runtime}")
        costs["runtime"] = _d(durations, "guest_runtime") if own is None else max(0.0, own)
        download = sum(size - have for _n, size, have in fetch) * pull / GB
        # vLLM and llama-server load their one model before they answer (the models
        # phase waits for it); Ollama loads the first model when aihost-health asks.
        costs["models"] = download + (0.0 if runtime == "ollama" else sum(loads) * load / GB)
    first_load = loads[0] * load / GB if runtime == "ollama" and loads else 0.0
    costs["health"] = _health(durations, first_load)
    spans, at = [], agent_from
    for phase in PHASES:
        if phase not in costs:
            continue
        skipped = phase in baked
        took = 0.0 if skipped else costs[phase]
        begins = at
        if phase == "models" and not skipped:
            begins = max(at, models_not_before)
            took += begins - at
        span_fetch = fetch if phase == "models" and not skipped else ()
        fetched = sum(size - have for _n, size, have in span_fetch) * pull / GB
        spans.append(Span(phase, at, at + took, skipped, span_fetch, begins + fetched, begins))
        at += took
    return Timeline(tuple(spans), agent_from)


def download_progress(span: Span, t: float, pull_s_per_gb: float) -> dict[str, object] | None:
    """The model download's state at t inside the models span, as the state file's
    `download` records it: the model being pulled, its bytes done and total, its index."""
    if not span.fetch:
        return None
    rate = GB / pull_s_per_gb if pull_s_per_gb > 0 else float("inf")
    clock = span.fetch_start
    if t < clock:
        return None  # still waiting for its turn at the model store
    for index, (name, size, have) in enumerate(span.fetch, start=1):
        took = (size - have) / rate
        if t < clock + took or index == len(span.fetch):
            done = (
                size
                if took == 0
                else have + int(min(1.0, max(0.0, (t - clock) / took)) * (size - have))
            )
            return {
                "model": name,
                "completed": done,
                "total": size,
                "index": index,
                "count": len(span.fetch),
            }
        clock += took
    return None
