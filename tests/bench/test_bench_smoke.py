"""Smoke run of the benchmark (0 s tasks, one repetition): every scenario yields numbers and
each peer ends with the VM config aihost ends with. No wall-clock assertions."""

from __future__ import annotations

import json

import pytest

# Benchmark smoke runs take tens of seconds: the slow lane (.ci/run) runs them.
pytestmark = pytest.mark.slow

pytest.importorskip("provision.sim.server")


def _run(tmp_path, *args: str) -> dict:
    from bench.main import run

    out = tmp_path / "out"
    results = run(
        [
            "--scale",
            "0",
            "--reps",
            "1",
            "--startup-reps",
            "1",
            "--validate",
            "--out",
            str(out),
            "--quiet",
            *args,
        ]
    )
    assert (out / "RESULTS.md").read_text().startswith("# aihost benchmarks")
    assert json.loads((out / "results.json").read_text())["meta"]["scale"] == 0
    for name, data in results["scenarios"].items():
        assert "error" not in data, f"{name}: {data.get('error')}"
    return results


def _number(value) -> bool:
    return isinstance(value, int | float)


def _assert_fresh(results: dict, peer: str) -> None:
    tools = results["scenarios"]["fresh"]["tools"]
    for tool in ("aihost", "aihost --no-wait", peer):
        entry = tools[tool]["zero"]
        assert entry["failures"] == [], entry["failures"]
        run = entry["runs"][0]
        assert run["config_diff"] == [], f"{tool} left another config: {run['config_diff']}"
        assert run["violations"] == []
        assert all(_number(run[k]) for k in ("wall", "requests", "writes", "task_polls"))
        assert run["requests"] > 0 and run["writes"] > 0
        assert all(p["polls"] >= 1 for p in run["polls"])
    rerun = tools["aihost"]["rerun"]["runs"][0]
    assert _number(rerun["requests"]) and rerun["write_paths"] == []


def _assert_swap(results: dict, peer: str) -> None:
    tools = results["scenarios"]["swap"]["tools"]
    for tool in ("aihost", peer):
        entry = tools[tool]
        assert entry["failures"] == [], entry["failures"]
        run = entry["runs"][0]
        assert run["config_diff"] == [], f"{tool} left other configs: {run['config_diff']}"
        assert _number(run["downtime"]) and _number(run["requests"])


def _assert_ttft(results: dict, out: str) -> None:
    """The store and the bake each cut the wait: only the simulator's durations order the
    cases (a tiny scale), no wall-clock limit."""
    from bench.ttft import MODEL
    from provision.sim.guest_models import model_bytes

    cases = {case["label"]: case for case in results["scenarios"]["ttft"]["cases"]}
    unbaked, baked = cases["unbaked, first boot"], cases["baked, first boot"]
    stored = cases["baked, re-created, model in the store"]
    assert unbaked["downloaded_bytes"] == baked["downloaded_bytes"] == model_bytes(MODEL)
    assert cases["unbaked, re-created, model in the store"]["downloaded_bytes"] == 0
    assert stored["downloaded_bytes"] == 0
    # realistic figures: about 850 s unbaked, 470 s baked, under 100 s baked and stored
    assert stored["seconds"] < baked["seconds"] < unbaked["seconds"]
    assert "models" in baked["phases"] and "driver" not in baked["phases"]
    assert "models" not in stored["phases"] and stored["swap"]["seconds"] > 0
    assert "| re-creating a VM whose model is in the store downloads 0 bytes |" in out
    assert "| baked, re-created, model in the store | 0.004 |" in out


def test_smoke_with_the_proxmoxer_peer(tmp_path):
    results = _run(tmp_path, "--peers", "proxmoxer", "--fleet", "1,2")
    _assert_fresh(results, "proxmoxer")
    _assert_swap(results, "proxmoxer")
    _assert_ttft(results, (tmp_path / "out" / "RESULTS.md").read_text())
    sizes = results["scenarios"]["fleet"]["sizes"]
    assert set(sizes) == {"1", "2"}
    assert all(s["all_running"] and _number(s["ratio_to_one"]) for s in sizes.values())
    commands = results["scenarios"]["startup"]["commands"]
    assert _number(commands["aihost --help"]["ratio"])
    assert {t["status"] for t in results["targets"]} <= {"met", "NOT met", "n/a"}


@pytest.mark.slow
def test_smoke_with_the_ansible_peer(tmp_path):
    from bench.ansible_peer import available

    if not available():
        pytest.skip("ansible is not installed (pip install '.[bench]')")
    results = _run(tmp_path, "--peers", "ansible", "--only", "fresh,swap")
    _assert_fresh(results, "ansible")
    _assert_swap(results, "ansible")
    rerun = results["scenarios"]["fresh"]["tools"]["ansible"]["rerun"]["runs"][0]
    assert _number(rerun["requests"])
