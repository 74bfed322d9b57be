"""Scenario 7: time to first token. How long a user waits from `aihost vm up` until the
LLM server answers with its model loaded, with the simulated guest taking realistic time
per first-boot phase (provision/sim/guest_timeline.py REALISTIC; sources in
docs/guest-timing.md), for:

- unbaked: a VM of the plain cloud image (packages, driver with DKMS, reboot, runtime,
  model download, model load);
- unbaked, re-created with its model in the node's store (the download is skipped);
- baked: a VM of a template `aihost template bake` made (no apt, driver, reboot or runtime
  install), its model downloaded;
- baked with the model in the store;
- a swap of the card between two VMs whose models are in the store.

Long cases run at a small time scale and are reported in realistic seconds (wall time /
scale), so aihost's own fixed costs (start-up, request latency, readings of the guest up
to a second apart) are magnified by 1/scale there; the short ones run at scale 1. An agent
call while the guest's agent is not up is refused after qemu-server's 3 s guest-ping
timeout, scaled like the rest (bench/simctl.py durations_for).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from bench.context import Bench
from bench.procs import aihost_argv, child_env
from bench.simctl import REALISTIC as TASKS
from bench.simctl import BenchSim, guest_durations
from bench.ttft_report import STORED
from provision.sim.guest_models import model_bytes
from provision.sim.guest_timeline import GB, REALISTIC

VM, OTHER, GPU, RECIPE = "llm-box", "chat-box", "rtx4090", "gpu-base"
MODEL, OTHER_MODEL = "llama3.1:8b", "qwen2.5:7b"
STORE_DIR = "/srv/aihost-models"
BOOT = 20.0  # assumed: OVMF and a cloud image to cloud-init's first module (no source)
SLOW, FAST = 0.05, 1.0  # time scales: the long first boots, the short ones
AGENT_TIMEOUT = "7200"


def _durations(scale: float) -> dict[str, float]:
    return {**guest_durations(scale), "boot": BOOT * scale}


def _fixture(root: Path) -> Path:
    """The default fixture with the store's directory on the node."""
    from provision.sim.fixture import DEFAULT_FIXTURE

    data = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    data["nodes"]["pve1"]["dirs"] = [STORE_DIR]
    path = root / "ttft-fixture.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _inventory(sim: BenchSim, *, baked: bool, store: bool) -> Path:
    vm = {"gpu": GPU, "runtime": "ollama", "models": [MODEL], "vmid": 300}
    other = {"gpu": GPU, "runtime": "ollama", "models": [OTHER_MODEL], "vmid": 301}
    if baked:
        vm["template"] = other["template"] = RECIPE
    path = sim.inventory(sim.root / "inventory.yaml", {VM: vm, OTHER: other})
    data = yaml.safe_load(path.read_text())
    if store:
        data["hosts"]["pve1"]["model_store"] = {"path": STORE_DIR}
    data["bake"] = {RECIPE: {"from": "ubuntu-2404-cloud", "host": "pve1", "runtime": "ollama"}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _set_durations(sim: BenchSim, scale: float) -> None:
    """Every duration at this scale, from now on (the simulator's control API)."""
    response = requests.post(
        f"{sim.server.url}/_sim/durations",
        json=_durations(scale),
        verify=str(sim.server.cert_path),
        timeout=10,
    )
    response.raise_for_status()


def _timed(bench: Bench, sim: BenchSim, *args: str) -> dict[str, Any]:
    """Run aihost ARGS with -o json; its wall time and its first-boot events, each with
    the seconds since launch it was seen at."""
    env = child_env({"AIHOST_STATE_DIR": str(sim.root / "aihost-state")})
    argv = [*aihost_argv(), "-o", "json", *args]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=sim.root
    )
    events: list[tuple[float, dict[str, Any]]] = []
    tail: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen = time.monotonic() - started
            if line.startswith("{"):
                try:
                    events.append((seen, json.loads(line)))
                    continue
                except ValueError:
                    pass
            tail.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    out = proc.stdout.read() if proc.stdout else ""
    proc.wait()
    wall = time.monotonic() - started
    reader.join()
    if proc.returncode != 0:
        raise RuntimeError(
            f"aihost {' '.join(args)} exited {proc.returncode}: {''.join(tail)[-800:]}"
        )
    return {"wall": wall, "events": events, "stdout": out}


def _phases(run: dict[str, Any], scale: float) -> dict[str, float]:
    """Realistic seconds per step: until first boot's first phase was seen (clone, start,
    boot, packages), then each phase until the next one's start, and after `done`."""
    marks = [(t, e["phase"]) for t, e in run["events"] if e.get("event") == "phase"]
    firsts: list[tuple[float, str]] = []
    for t, phase in marks:
        if not firsts or firsts[-1][1] != phase:
            firsts.append((t, phase))
    out: dict[str, float] = {}
    if not firsts:
        return {"total": run["wall"] / scale}
    out["until first boot's first phase"] = firsts[0][0] / scale
    for (t, phase), (t_next, _next) in zip(firsts, firsts[1:], strict=False):
        out[phase] = (t_next - t) / scale
    out["after done"] = (run["wall"] - firsts[-1][0]) / scale
    return out


def _downloaded(sim: BenchSim, name: str) -> int | None:
    """Bytes the VM's first boot downloaded (its own state file, read through its agent)."""
    vm = sim.vms()[name]
    read = (
        sim.api()
        .nodes(vm["node"])
        .qemu(vm["vmid"])
        .agent("file-read")
        .get(file="/var/lib/aihost/state.json")
    )
    phase = json.loads(read["content"])["phases"].get("models") or {}
    return phase.get("downloaded_bytes")


def _case(
    bench: Bench, label: str, *, baked: bool, store: bool, scales: tuple[float, float]
) -> dict[str, Any]:
    """One time-to-first-token case in a fresh simulator. With a store the VM is made once
    (filling the store) and removed first; set-up runs at the first scale, the measured
    `vm up` at the second."""
    setup, scale = scales
    bench.say(f"time to first token: {label}")
    fixture = _fixture(bench.workdir)
    with BenchSim(_durations(setup), root=bench.workdir, fixture=fixture) as sim:
        inventory = str(_inventory(sim, baked=baked, store=store))
        result: dict[str, Any] = {"label": label, "scale": scale}
        if baked:
            bake = _timed(bench, sim, "-i", inventory, "template", "bake", RECIPE)
            result["bake_seconds"] = bake["wall"] / setup
        if store:  # the first VM fills the store, then goes
            _timed(bench, sim, "-i", inventory, "vm", "up", VM, "--agent-timeout", AGENT_TIMEOUT)
            _timed(bench, sim, "-i", inventory, "vm", "destroy", VM, "--yes")
        _set_durations(sim, scale)
        run = _timed(bench, sim, "-i", inventory, "vm", "up", VM, "--agent-timeout", AGENT_TIMEOUT)
        result.update(
            seconds=run["wall"] / scale,
            phases=_phases(run, scale),
            downloaded_bytes=_downloaded(sim, VM),
            model_bytes=model_bytes(MODEL),
        )
        if baked and store:
            result["swap"] = _swap(bench, sim, inventory, scales)
        return result


def _swap(
    bench: Bench, sim: BenchSim, inventory: str, scales: tuple[float, float]
) -> dict[str, Any]:
    """A second VM takes the card (its model goes to the store), then the card moves back
    to the first VM, whose model is stored: the measured swap."""
    setup, scale = scales
    _set_durations(sim, setup)
    take = ("vm", "up", OTHER, "--take-gpu", "--agent-timeout", AGENT_TIMEOUT)
    _timed(bench, sim, "-i", inventory, *take)
    _set_durations(sim, scale)
    run = _timed(bench, sim, "-i", inventory, "gpu", "swap", GPU, "--to", VM)
    return {
        "seconds": run["wall"] / scale,
        "load": model_bytes(MODEL) * REALISTIC["guest_load_s_per_gb"] / GB,
    }


def scenario(bench: Bench, slow: float = SLOW, fast: float = FAST) -> dict[str, Any]:
    """Run every case (long ones at scale slow, short ones at fast); the figures."""
    cases = [
        _case(bench, "unbaked, first boot", baked=False, store=False, scales=(slow, slow)),
        _case(bench, STORED[0], baked=False, store=True, scales=(slow, slow)),
        _case(bench, "baked, first boot", baked=True, store=False, scales=(slow, slow)),
        _case(bench, STORED[1], baked=True, store=True, scales=(slow, fast)),
    ]
    return {
        "cases": cases,
        "boot": BOOT,
        "model_load": model_bytes(MODEL) * REALISTIC["guest_load_s_per_gb"] / GB,
        # the clone and the start of the VM: on the path of every fresh VM
        "tasks": TASKS["qmclone"] + TASKS["qmstart"],
        "profile": dict(REALISTIC),
    }
