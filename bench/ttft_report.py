"""Scenario 7's table (bench/RESULTS.md) and its issue #18 targets."""

from __future__ import annotations

from typing import Any

STORED = ("unbaked, re-created, model in the store", "baked, re-created, model in the store")
BAKED_STORED = "baked, re-created, model in the store"


def _s(value: Any) -> str:
    return "–" if value is None else f"{value:.0f} s"


def _gb(value: Any) -> str:
    return "–" if value is None else f"{value / 1e9:.2f} GB"


def _case(data: dict[str, Any], label: str) -> dict[str, Any]:
    return next((c for c in data.get("cases", []) if c.get("label") == label), {})


def serving_ratio(data: dict[str, Any]) -> tuple[float | None, float | None]:
    """(start to serving, boot + model load) in seconds for a baked VM with its model in
    the store: the VM's start is the measured time less the clone and start tasks."""
    case = _case(data, BAKED_STORED)
    if not case.get("seconds"):
        return None, None
    return case["seconds"] - data["tasks"], data["boot"] + data["model_load"]


def markdown(data: dict[str, Any]) -> list[str]:
    """The time-to-first-token section."""
    lines = [
        "## 7. Time to first token (simulated guest with realistic first-boot figures)",
        "",
        "From `aihost vm up` to the runtime answering with its model loaded (Ollama, "
        f"llama3.1:8b, {_gb(data.get('cases', [{}])[0].get('model_bytes'))}), in realistic "
        f"seconds (wall time / scale). Boot {data.get('boot'):.0f} s (assumed), model load "
        f"{data.get('model_load', 0):.1f} s, clone + start tasks {data.get('tasks', 0):.0f} s; "
        "first-boot figures and their sources: docs/guest-timing.md. A case at scale 0.05 "
        "magnifies aihost's own time (start-up, requests, readings of the guest up to a "
        "second apart) 20 times, so its phase figures are within about ±20 s.",
        "",
        "| case | scale | to serving | downloaded | bake (once) | phases seen by `vm up` |",
        "|---|---|---|---|---|---|",
    ]
    for case in data.get("cases", []):
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in case.get("phases", {}).items())
        lines.append(
            f"| {case['label']} | {case['scale']:g} | {_s(case.get('seconds'))} | "
            f"{_gb(case.get('downloaded_bytes'))} | {_s(case.get('bake_seconds'))} | {phases} |"
        )
    swap = _case(data, BAKED_STORED).get("swap")
    if swap:
        lines.append(
            f"| gpu swap to a VM whose model is stored | 1 | {_s(swap['seconds'] + swap['load'])} "
            f"| – | – | swap {swap['seconds']:.0f} s (shutdown, start, boot, nvidia-smi) + "
            f"model load {swap['load']:.0f} s (computed: Ollama loads on the first request) |"
        )
    return [*lines, ""]


def targets(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Issue #18's time-to-first-token targets: (target, measured, ok or None)."""
    data = data or {}
    start_to_serving, floor = serving_ratio(data)
    over = None if start_to_serving is None or not floor else start_to_serving / floor - 1
    stored = [_case(data, label).get("downloaded_bytes") for label in STORED]
    zero = None if any(b is None for b in stored) else all(b == 0 for b in stored)
    return [
        {
            "target": "baked template, model in the store: start to serving within 10% of "
            "boot + model load",
            "measured": "–"
            if over is None
            else f"+{over * 100:.0f}% ({start_to_serving:.1f} s vs {floor:.1f} s)",
            "ok": None if over is None else over <= 0.10,
        },
        {
            "target": "re-creating a VM whose model is in the store downloads 0 bytes",
            "measured": ", ".join(_gb(b) for b in stored),
            "ok": zero,
        },
    ]
