"""Write bench/RESULTS.md (tables, machine, date, the command) and bench/results.json."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench import ttft_report
from bench.targets import evaluate


def _f(value: Any, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.{digits}f}{unit}"
    return f"{value:g}{unit}" if isinstance(value, int | float) else str(value)


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _same(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "–"
    diffs = [d for r in runs for d in r.get("config_diff", [])]
    return "yes" if not diffs else "NO: " + "; ".join(sorted(set(diffs)))[:300]


def _fresh(data: dict[str, Any]) -> list[str]:
    rows, rerun_rows, poll_rows = [], [], []
    for tool, entry in data.get("tools", {}).items():
        zero, scaled = entry["zero"]["median"], entry["scaled"]["median"]
        rows.append(
            [
                tool,
                _f(zero["requests"]),
                _f(zero["writes"]),
                _f(zero["task_polls"]),
                _f(zero["wall"], unit=" s"),
                _f(scaled["wall"], unit=" s"),
                _f(scaled["task_time"], unit=" s"),
                _f(scaled["overhead"], unit=" s"),
                _pct(scaled["overhead_ratio"]),
                _same(entry["zero"]["runs"] + entry["scaled"]["runs"]),
            ]
        )
        rerun = entry.get("rerun", {}).get("median") or {}
        if entry.get("rerun", {}).get("runs"):
            rerun_rows.append(
                [
                    tool,
                    _f(rerun.get("requests")),
                    _f(rerun.get("writes")),
                    _f(rerun.get("wall"), unit=" s"),
                ]
            )
        poll_rows.extend(_polls(tool, entry["scaled"]["runs"]))
    lines = ["## 1. Fresh `vm up` of one GPU VM (clone, configure + GPU, resize, start)", ""]
    lines += _table(
        [
            "tool",
            "requests",
            "writes",
            "task polls",
            "wall (0 s tasks)",
            "wall (scaled)",
            "task time",
            "overhead",
            "overhead %",
            "same config",
        ],
        rows,
    )
    lines += ["## 2. Re-run on the converged VM (0 s tasks)", ""]
    lines += _table(["tool", "requests", "writes", "wall"], rerun_rows)
    lines += [
        "The minimal proxmoxer script is not idempotent (a re-run fails at the clone), "
        "so it has no row here.",
        "",
    ]
    lines += ["## 6. Task polling (scaled durations)", ""]
    lines += _table(["tool", "task", "status requests per task", "detection delay"], poll_rows)
    lines += [
        "aihost polls converge on a task type's typical duration "
        f"(provision/pve/polling.py: {_typical()}), never more than 0.5 s apart; "
        "the proxmoxer script polls every 0.1 s. At scale 1 the simulated durations are "
        "those typical ones (aihost's best case); at other scales tasks end off the "
        "expected time and are noticed within 0.5 s, as with plain backoff. The proxmoxer "
        "script's polls, 0.1 s plus a request apart, also fall close after the round task "
        "ends at scale 1: how close depends on each run's request latency, and with it "
        "the script's overhead (below), which moves #18's ratio from one run to the next.",
        "",
    ]
    lines += _table(
        ["tool", "runs", "overhead: least", "median", "most"],
        [_overhead_spread(tool, entry["scaled"]["runs"]) for tool, entry in data["tools"].items()],
    )
    return lines


def _overhead_spread(tool: str, runs: list[dict[str, Any]]) -> list[str]:
    """One tool's overhead over its runs at scaled durations: least, median, most."""
    values = sorted(
        float(r["overhead"]) for r in runs if isinstance(r.get("overhead"), int | float)
    )
    if not values:
        return [tool, "0", "?", "?", "?"]
    middle = statistics.median(values)
    return [tool, str(len(values)), *(_f(v, unit=" s") for v in (values[0], middle, values[-1]))]


def _typical() -> str:
    from provision.pve.polling import TYPICAL_SECONDS

    return ", ".join(f"{kind} {seconds:g} s" for kind, seconds in TYPICAL_SECONDS.items())


def _polls(tool: str, runs: list[dict[str, Any]]) -> list[list[str]]:
    from statistics import median

    by_type: dict[str, tuple[list[int], list[float]]] = {}
    for run in runs:
        for poll in run.get("polls", []):
            counts, delays = by_type.setdefault(poll["type"], ([], []))
            counts.append(poll["polls"])
            if poll["detection_delay"] is not None:
                delays.append(poll["detection_delay"])
    return [
        [tool, kind, _f(float(median(counts))), _f(median(delays), 3, " s") if delays else "–"]
        for kind, (counts, delays) in sorted(by_type.items())
    ]


def _fleet(data: dict[str, Any]) -> list[str]:
    rows = [
        [
            size,
            _f(e["median_wall"], unit=" s"),
            _f(e["ratio_to_one"], unit="x"),
            _f(e["median_requests_per_vm"]),
            "yes" if e["all_running"] else "NO",
        ]
        for size, e in data.get("sizes", {}).items()
    ]
    lines = [
        "## 3. Fleet: `aihost vm up --all`",
        "",
        f"Per-VM task chain {_f(data.get('task_chain'), unit=' s')}; aihost works on "
        f"at most {data.get('workers')} VMs at once.",
        "",
    ]
    return lines + _table(["VMs", "wall", "vs one VM", "requests per VM", "all running"], rows)


def _swap(data: dict[str, Any]) -> list[str]:
    rows = []
    for tool, entry in data.get("tools", {}).items():
        m = entry["median"]
        rows.append(
            [
                tool,
                _f(m["downtime"], unit=" s"),
                _f(m["task_time"], unit=" s"),
                _f(m["overhead"], unit=" s"),
                _pct(m["overhead_ratio"]),
                _f(m["requests"]),
                _f(m["writes"]),
                _same(entry["runs"]),
            ]
        )
    lines = [
        "## 4. GPU swap between two VMs (scaled durations)",
        "",
        "Downtime: from the holder's shutdown request to the tool's exit (aihost: "
        "after nvidia-smi answered in the target, unless --no-verify).",
        "",
    ]
    return lines + _table(
        [
            "tool",
            "downtime",
            "task time",
            "overhead",
            "overhead %",
            "requests",
            "writes",
            "same config",
        ],
        rows,
    )


def _startup(data: dict[str, Any]) -> list[str]:
    rows = [
        [f"`{label}`", _f(e["median"], 3, " s"), _f(e["ratio"], unit="x")]
        for label, e in data.get("commands", {}).items()
    ]
    return ["## 5. CLI start-up", ""] + _table(["command", "median", "vs python -c pass"], rows)


SECTIONS = {
    "fresh": _fresh,
    "fleet": _fleet,
    "swap": _swap,
    "startup": _startup,
    "ttft": ttft_report.markdown,
}


def markdown(results: dict[str, Any]) -> str:
    """RESULTS.md's text."""
    meta = results["meta"]
    lines = [
        "# aihost benchmarks against Ansible's proxmox_kvm and a proxmoxer script",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['machine']}; load {meta.get('load', '?')}",
        f"- Versions: {meta['versions']}",
        f"- Task durations (realistic x scale {meta['scale']}): {meta['durations']}",
        f"- Repetitions: {meta['reps']} (medians); fresh vm up at scaled durations: "
        f"{meta.get('fresh_reps', meta['reps'])}, the tools taking turns; "
        f"start-up: {meta['startup_reps']}",
        f"- Reproduce: `{meta['command']}`",
        "",
        "## Targets (issues #8 and #18)",
        "",
    ]
    lines += _table(
        ["issue", "target", "measured", "status"],
        [[t["issue"], t["target"], t["measured"], t["status"]] for t in evaluate(results)],
    )
    for name, render in SECTIONS.items():
        data = results["scenarios"].get(name)
        if data is None:
            continue
        if "error" in data:
            lines += [f"## {name}: FAILED", "", "```", data["error"][-2000:], "```", ""]
            continue
        lines += render(data)
    failures = _failures(results)
    if failures:
        lines += ["## Failures", ""] + [f"- {f}" for f in failures] + [""]
    lines += ["## How it is measured", ""] + [f"- {n}" for n in meta["notes"]] + [""]
    return "\n".join(lines)


def _failures(results: dict[str, Any]) -> list[str]:
    found = []
    for name, data in results["scenarios"].items():
        for tool, entry in (data.get("tools") or data.get("sizes") or {}).items():
            parts = [entry] + [v for v in entry.values() if isinstance(v, dict)]
            for part in parts:
                for failure in part.get("failures", []):
                    found.append(f"{name} / {tool}: " + failure.replace("\n", " ")[:600])
            violations = {
                v
                for part in parts
                for r in part.get("runs", [])
                if isinstance(r, dict)
                for v in r.get("violations", [])
            }
            found.extend(f"{name} / {tool}: simulator saw: {v}" for v in sorted(violations))
    return found


def write(results: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write RESULTS.md and results.json into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    results["targets"] = evaluate(results)
    md, js = folder / "RESULTS.md", folder / "results.json"
    md.write_text(markdown(results))
    js.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return md, js
