"""Smoke run of the time-to-first-token scenario at a tiny time scale: a VM of a baked
template with its model in the store serves sooner than a baked one that downloads, which
serves sooner than an unbaked one; a re-created VM whose model is stored downloads 0
bytes. Only the simulator's own durations order them, no wall-clock limit."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("provision.sim.server")


def test_the_store_and_the_bake_each_cut_the_wait(tmp_path):
    from bench.context import Bench
    from bench.ttft import MODEL, scenario
    from bench.ttft_report import markdown, targets
    from provision.sim.guest_models import model_bytes

    data = scenario(Bench(scale=0.0, reps=1, workdir=tmp_path, quiet=True), 0.004, 0.004)
    cases = {case["label"]: case for case in data["cases"]}
    unbaked, baked = cases["unbaked, first boot"], cases["baked, first boot"]
    stored = cases["baked, re-created, model in the store"]
    assert unbaked["downloaded_bytes"] == baked["downloaded_bytes"] == model_bytes(MODEL)
    assert cases["unbaked, re-created, model in the store"]["downloaded_bytes"] == 0
    assert stored["downloaded_bytes"] == 0
    # realistic figures: about 800 s unbaked, 470 s baked, under 100 s baked and stored
    assert stored["seconds"] < baked["seconds"] < unbaked["seconds"]
    assert "models" in baked["phases"] and "driver" not in baked["phases"]
    assert "models" not in stored["phases"] and stored["swap"]["seconds"] > 0
    assert targets(data)[1]["ok"] is True
    assert any(line.startswith("| baked, re-created") for line in markdown(data))
