"""The benchmark's target table: issue #18's targets next to issue #8's, computed from
the figures of one run (synthetic results here: no benchmark runs)."""

from __future__ import annotations

from typing import Any

from bench.targets import evaluate


def _ttft(over: float, downloaded: int) -> dict[str, Any]:
    """Scenario 7's figures: a baked VM with its model stored serves `over` (a fraction)
    later than boot + model load after its clone and start (8 s); re-created VMs
    downloaded that many bytes."""
    stored = "baked, re-created, model in the store"
    return {
        "cases": [
            {"label": "unbaked, re-created, model in the store", "downloaded_bytes": downloaded},
            {"label": stored, "seconds": 8.0 + 30.0 * (1 + over), "downloaded_bytes": downloaded},
        ],
        "tasks": 8.0,
        "boot": 20.0,
        "model_load": 10.0,
    }


def _results(
    *, ours: float, theirs: float, rerun: float, swap_ratio: float, ttft: Any = None
) -> dict[str, Any]:
    def scaled(overhead: float) -> dict[str, Any]:
        return {"scaled": {"median": {"overhead": overhead, "overhead_ratio": overhead / 8}}}

    return {
        "meta": {"scale": 1.0},
        "scenarios": {
            "fresh": {
                "tools": {
                    "aihost": {**scaled(ours), "rerun": {"median": {"wall": rerun}}},
                    "proxmoxer": scaled(theirs),
                }
            },
            "swap": {
                "tools": {
                    "aihost": {
                        "median": {
                            "overhead_ratio": swap_ratio,
                            "downtime": 7 * (1 + swap_ratio),
                            "task_time": 7.0,
                        }
                    }
                }
            },
            "ttft": ttft,
        },
    }


def _issue18(results: dict[str, Any]) -> dict[str, dict[str, str]]:
    rows = [row for row in evaluate(results) if row["issue"] == "#18"]
    return {row["target"]: row for row in rows}


def test_issue_18_targets_sit_beside_issue_8s():
    rows = evaluate(_results(ours=0.5, theirs=0.28, rerun=0.4, swap_ratio=0.03))
    assert [r["issue"] for r in rows].count("#8") == 7
    assert [r["issue"] for r in rows].count("#18") == 5


def test_issue_18_targets_met():
    figures = {"ours": 0.5, "theirs": 0.28, "rerun": 0.45, "swap_ratio": 0.04}
    rows = _issue18(_results(**figures, ttft=_ttft(0.09, 0)))
    assert {r["status"] for r in rows.values()} == {"met"}
    overhead = rows["fresh vm up: client overhead <= 2x the proxmoxer script's"]
    assert overhead["measured"] == "1.79x (0.50 s vs 0.28 s, scale 1.0)"
    assert rows["gpu swap: downtime <= task time + 5%"]["measured"] == (
        "+4% (7.28 s downtime, 7.00 s of tasks)"
    )


def test_issue_18_targets_not_met_as_of_the_issue():
    # the figures issue #18 was filed with: 1.22 s vs 0.28 s, 0.55 s, 10%
    figures = {"ours": 1.22, "theirs": 0.28, "rerun": 0.55, "swap_ratio": 0.10}
    rows = _issue18(_results(**figures, ttft=_ttft(0.30, 4_920_753_328)))
    assert {r["status"] for r in rows.values()} == {"NOT met"}
    serving = "baked template, model in the store: start to serving within 10% of boot + model load"
    assert rows[serving]["measured"] == "+30% (39.0 s vs 30.0 s)"


def test_time_to_first_token_targets_are_not_judged_without_the_scenario():
    rows = _issue18(_results(ours=0.5, theirs=0.28, rerun=0.45, swap_ratio=0.04))
    assert [r["status"] for r in rows.values()].count("n/a") == 2
