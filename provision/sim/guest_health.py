"""`/usr/local/bin/aihost-health` in the guest model: the GPU the driver sees and the
runtime the user-data set up, as the real health script reports them."""

from __future__ import annotations

import json
from typing import Any

from provision.sim.guest_facts import ExecResult, Guest
from provision.sim.guest_runtime import Runtime, runtime_of, runtime_settings


def reachable(guest: Guest, runtime: str) -> bool:
    """Ollama and llama.cpp also serve on the CPU; vLLM needs a working CUDA GPU."""
    return guest.gpu_ok if runtime == "vllm" else True


def health(guest: Guest) -> ExecResult:
    view, runtime = guest.view, runtime_of(guest.cloud)
    first = view.gpus[0] if view.gpus and guest.gpu_ok else None
    gpu = {
        "visible": guest.gpu_ok,
        "name": first.get("name") if first else None,
        "memory_mib": int(first["memory_mib"]) if first and "memory_mib" in first else None,
        "driver": guest.driver if guest.gpu_ok else None,
    }
    if runtime is None:
        state: dict[str, Any] = {
            "name": "none",
            "reachable": False,
            "url": None,
            "models": [],
            "on_gpu": False,
            "context": None,
            "parallel": None,
        }
    else:
        answers = reachable(guest, runtime.name)
        host = view.ip.split("/")[0] if runtime.host == "0.0.0.0" and view.ip else runtime.host
        if host == "0.0.0.0":
            host = "127.0.0.1"
        state = {
            "name": runtime.name,
            "reachable": answers,
            "url": f"http://{host}:{runtime.port}",
            "models": runtime.models if answers else [],
            "on_gpu": answers and on_gpu(guest, runtime.name),
            **_settings(guest, runtime, answers),
        }
    expected = bool(view.gpus) or guest.driver is not None
    healthy = (guest.gpu_ok or not expected) and (runtime is None or state["reachable"])
    return ExecResult(0 if healthy else 1, json.dumps({"gpu": gpu, "runtime": state}) + "\n", "")


def _settings(guest: Guest, runtime: Runtime, reachable: bool) -> dict[str, int | None]:
    """What the running runtime reports of its context and parallel sequences."""
    if not reachable:
        return {"context": None, "parallel": None}
    vram = sum(int(g.get("memory_mib", 0)) for g in guest.view.gpus) if guest.gpu_ok else 0
    unit = guest.cloud.files.get(f"/etc/systemd/system/{runtime.unit}", "")
    return runtime_settings(runtime, unit, vram)


def on_gpu(guest: Guest, runtime: str) -> bool:
    """Current Ollama needs driver 550 or newer; with an older one it runs on the CPU."""
    if not guest.gpu_ok or guest.driver is None:
        return False
    return runtime != "ollama" or int(guest.driver.split(".")[0]) >= 550
