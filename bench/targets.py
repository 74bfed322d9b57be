"""Where each target of issues #8 and #18 stands, from the measured results of one run."""

from __future__ import annotations

from typing import Any

from bench import ttft_report


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def evaluate(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per target: its issue, the target, what was measured, met / NOT met / n/a."""
    return [{"issue": "#8", **row} for row in issue8(results)] + [
        {"issue": "#18", **row} for row in issue18(results)
    ]


def issue18(results: dict[str, Any]) -> list[dict[str, str]]:
    """Issue #18's targets for client overhead and swaps (faster swaps, fewer fixed costs)."""
    fresh = _get(results, "scenarios", "fresh", "tools") or {}
    ours = _get(fresh, "aihost", "scaled", "median", "overhead")
    theirs = _get(fresh, "proxmoxer", "scaled", "median", "overhead")
    times = None if ours is None or not theirs else ours / theirs
    rerun = _get(fresh, "aihost", "rerun", "median", "wall")
    swap = _get(results, "scenarios", "swap", "tools", "aihost", "median") or {}
    ratio = swap.get("overhead_ratio")
    return [
        {
            "target": "fresh vm up: client overhead <= 2x the proxmoxer script's",
            "measured": f"{_x(times)} ({_s(ours)} vs {_s(theirs)}, scale "
            f"{_get(results, 'meta', 'scale')}{_spread(paired_ratios(fresh))})",
            "status": _verdict(None if times is None else times <= 2.0),
        },
        {
            "target": "converged re-run: under 0.5 s",
            "measured": _s(rerun),
            "status": _verdict(None if rerun is None else rerun < 0.5),
        },
        {
            "target": "gpu swap: downtime <= task time + 5%",
            "measured": f"+{_pct(ratio)} ({_s(swap.get('downtime'))} downtime, "
            f"{_s(swap.get('task_time'))} of tasks)",
            "status": _verdict(None if ratio is None else ratio <= 0.05),
        },
    ] + [
        {"target": row["target"], "measured": row["measured"], "status": _verdict(row["ok"])}
        for row in ttft_report.targets(_get(results, "scenarios", "ttft"))
    ]


def issue8(results: dict[str, Any]) -> list[dict[str, str]]:
    """Issue #8's targets (requests, overhead, re-run, fleet, swap, start-up)."""
    rows = []
    fresh = _get(results, "scenarios", "fresh", "tools") or {}
    theirs = _get(fresh, "ansible", "zero", "median", "requests")
    for tool, what in (("aihost", "with its guest checks"), ("aihost --no-wait", "same work")):
        ours = _get(fresh, tool, "zero", "median", "requests")
        rows.append(
            {
                "target": f"fresh vm up: fewer API requests than the Ansible playbook ({what})",
                "measured": f"`{tool}` {_n(ours)} vs Ansible {_n(theirs)} (0 s tasks)",
                "status": _verdict(None if ours is None or theirs is None else ours < theirs),
            }
        )
    scale = _get(results, "meta", "scale")
    ratio = _get(fresh, "aihost", "scaled", "median", "overhead_ratio")
    seconds = _get(fresh, "aihost", "scaled", "median", "overhead")
    task = _get(fresh, "aihost", "scaled", "median", "task_time")
    rows.append(
        {
            "target": "fresh vm up: wall-time overhead < 10% of the task time",
            "measured": f"{_pct(ratio)} ({_s(seconds)} over {_s(task)} of tasks, scale {scale})",
            "status": _verdict(None if ratio is None else ratio < 0.10),
        }
    )
    rerun = _get(fresh, "aihost", "rerun", "median") or {}
    requests, writes = rerun.get("requests"), rerun.get("writes")
    rows.append(
        {
            "target": "converged re-run: <= 3 requests, zero writes",
            "measured": f"{_n(requests)} requests, {_n(writes)} writes",
            "status": _verdict(None if requests is None else requests <= 3 and writes == 0),
        }
    )
    fleet = _get(results, "scenarios", "fleet", "sizes") or {}
    sizes = sorted(fleet, key=int)
    big = fleet.get(sizes[-1]) if sizes else None
    fleet_ratio = big.get("ratio_to_one") if big else None
    rows.append(
        {
            "target": "fleet of 20: <= 1.5x the wall time of one VM",
            "measured": f"{sizes[-1] if sizes else '?'} VMs: {_x(fleet_ratio)} of one VM",
            "status": _verdict(
                None
                if fleet_ratio is None or not sizes or sizes[-1] != "20"
                else fleet_ratio <= 1.5
            ),
        }
    )
    swap = _get(results, "scenarios", "swap", "tools", "aihost", "median") or {}
    swap_ratio = swap.get("overhead_ratio")
    rows.append(
        {
            "target": "gpu swap: downtime overhead < 10% over the task times",
            "measured": f"{_pct(swap_ratio)} ({_s(swap.get('downtime'))} downtime, "
            f"{_s(swap.get('task_time'))} of tasks, scale {scale})",
            "status": _verdict(None if swap_ratio is None else swap_ratio < 0.10),
        }
    )
    help_ratio = _get(results, "scenarios", "startup", "commands", "aihost --help", "ratio")
    rows.append(
        {
            "target": "`aihost --help` < 2.5x `python -c pass`",
            "measured": _x(help_ratio),
            "status": _verdict(None if help_ratio is None else help_ratio < 2.5),
        }
    )
    return rows


def paired_ratios(fresh: dict[str, Any]) -> list[float]:
    """aihost's overhead over the proxmoxer script's, run by run: each pair made in the same
    repetition (the tools take turns), so the pair saw the same machine load."""
    ours = {r.get("rep"): r.get("overhead") for r in _get(fresh, "aihost", "scaled", "runs") or []}
    theirs = _get(fresh, "proxmoxer", "scaled", "runs") or []
    return sorted(
        ours[r["rep"]] / r["overhead"]
        for r in theirs
        if ours.get(r.get("rep")) is not None and r.get("overhead")
    )


def _spread(ratios: list[float]) -> str:
    if len(ratios) < 2:
        return ""
    return f"; {len(ratios)} paired runs: {ratios[0]:.2f}x to {ratios[-1]:.2f}x"


def _n(value: Any) -> str:
    return "?" if value is None else f"{value:g}"


def _s(value: Any) -> str:
    return "?" if value is None else f"{value:.2f} s"


def _pct(value: Any) -> str:
    return "?" if value is None else f"{value * 100:.0f}%"


def _x(value: Any) -> str:
    return "?" if value is None else f"{value:.2f}x"
