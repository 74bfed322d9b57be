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


def test_overhead_ratio_shows_the_spread_of_runs_made_in_the_same_repetition():
    results = _results(ours=0.45, theirs=0.25, rerun=0.4, swap_ratio=0.03)
    tools = results["scenarios"]["fresh"]["tools"]
    tools["aihost"]["scaled"]["runs"] = [
        {"rep": 0, "overhead": 0.44},
        {"rep": 1, "overhead": 0.50},
        {"rep": 2, "overhead": 0.45},
    ]
    # rep 1 of the proxmoxer script failed: aihost's rep 1 has no partner
    tools["proxmoxer"]["scaled"]["runs"] = [
        {"rep": 0, "overhead": 0.20},
        {"rep": 2, "overhead": 0.30},
    ]
    row = _issue18(results)["fresh vm up: client overhead <= 2x the proxmoxer script's"]
    assert row["measured"] == "1.80x (0.45 s vs 0.25 s, scale 1.0; 2 paired runs: 1.50x to 2.20x)"


def test_fresh_runs_take_turns_and_repeat_scaled_runs_fresh_reps_times(monkeypatch):
    from bench import fresh
    from bench.context import Bench

    order: list[tuple[str, str]] = []

    def one_run(bench, tool, durations, ref, rerun):
        label = "zero" if durations == bench.zero else "scaled"
        order.append((tool, label))
        if tool == "ansible" and label == "scaled":
            raise RuntimeError("ansible failed")
        return {"overhead": 0.1, "rerun": {"wall": 0.2}} if rerun else {"overhead": 0.1}

    monkeypatch.setattr(fresh, "one_run", one_run)
    bench = Bench(scale=1.0, reps=2, workdir=None, fresh_reps=3, quiet=True)  # type: ignore[arg-type]
    out = fresh.scenario(bench, ref=None)  # type: ignore[arg-type]
    tools = ["aihost", "aihost --no-wait", "ansible", "proxmoxer"]
    zero = [t for t, label in order if label == "zero"]
    scaled = [t for t, label in order if label == "scaled"]
    # each repetition runs every tool once, the first one rotating
    assert zero == tools + tools[1:] + tools[:1]
    # ansible failed in the first scaled repetition and is not run again
    assert scaled == [
        *("aihost", "aihost --no-wait", "ansible", "proxmoxer"),
        *("aihost --no-wait", "proxmoxer", "aihost"),
        *("proxmoxer", "aihost", "aihost --no-wait"),
    ]
    entry = out["tools"]["aihost"]
    assert [r["rep"] for r in entry["scaled"]["runs"]] == [0, 1, 2]
    assert len(entry["zero"]["runs"]) == 2 and len(entry["rerun"]["runs"]) == 2
    assert out["tools"]["ansible"]["scaled"]["failures"] == ["ansible failed"]


def test_the_report_shows_each_tools_overhead_spread():
    from bench.report import _overhead_spread

    runs = [{"overhead": 0.2}, {"overhead": 0.16}, {"overhead": 0.31}, {"error": "failed"}]
    assert _overhead_spread("proxmoxer", runs) == ["proxmoxer", "3", "0.16 s", "0.20 s", "0.31 s"]
    assert _overhead_spread("ansible", []) == ["ansible", "0", "?", "?", "?"]
