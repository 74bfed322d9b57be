"""The simulated guest's first-boot arithmetic (provision/sim/guest_timeline.py): phase
order and lengths from the durations, baked phases 0 s, stored bytes not downloaded,
the download's progress, the named profile; model sizes (provision/sim/guest_models.py)."""

from __future__ import annotations

import pytest

from provision.sim.guest_models import SIZES, model_bytes
from provision.sim.guest_timeline import (
    GB,
    KEYS,
    REALISTIC,
    download_progress,
    profile,
    timeline,
)

D = {
    "boot": 2.0,
    "guest_apt": 3.0,
    "guest_driver": 4.0,
    "guest_dkms": 5.0,
    "guest_cuda": 7.0,
    "guest_reboot": 6.0,
    "guest_runtime": 8.0,
    "guest_runtime_vllm": 20.0,
    "guest_health": 1.0,
    "guest_pull_s_per_gb": 10.0,
    "guest_load_s_per_gb": 2.0,
}
OLLAMA_8B = model_bytes("llama3.1:8b")


def _lengths(line) -> dict[str, float]:
    return {s.phase: round(s.end - s.start, 6) for s in line.spans}


def test_phases_run_in_the_scripts_order_with_their_durations():
    line = timeline(D, driver=True, runtime="ollama", models=["llama3.1:8b"])
    assert line.agent_from == 5.0  # boot + packages
    assert [s.phase for s in line.spans] == ["driver", "reboot", "runtime", "models", "health"]
    assert line.spans[0].start == 5.0
    assert _lengths(line) == {
        "driver": 9.0,  # packages + DKMS build
        "reboot": 6.0,
        "runtime": 8.0,
        "models": round(OLLAMA_8B / GB * 10.0, 6),  # Ollama's pull only downloads
        # health loads it into VRAM while its 1 s of other checks run: the longer of the two
        "health": round(OLLAMA_8B / GB * 2.0, 6),
    }
    assert line.end == pytest.approx(5 + 9 + 6 + 8 + OLLAMA_8B / GB * 12)


def test_ollamas_health_phase_is_the_longer_of_its_checks_and_the_load_with_its_serial_part():
    load = OLLAMA_8B / GB * 2.0  # 9.84 s
    for checks, serial, health in ((1.0, 0.5, load + 0.5), (12.0, 0.5, 12.0), (5.0, 0.0, load)):
        durations = {**D, "guest_health": checks, "guest_health_serial": serial}
        line = timeline(durations, driver=False, runtime="ollama", models=["llama3.1:8b"])
        assert _lengths(line)["health"] == pytest.approx(health)
    # without a model to load (or for vLLM, which loaded in the models phase): checks only
    line = timeline({**D, "guest_health_serial": 0.5}, driver=False, runtime="ollama")
    assert _lengths(line)["health"] == 1.0


def test_vllm_loads_its_model_in_the_models_phase_and_cuda_lengthens_the_driver():
    size = model_bytes("Qwen/Qwen2.5-7B-Instruct")
    line = timeline(D, driver=True, cuda=True, runtime="vllm", models=["Qwen/Qwen2.5-7B-Instruct"])
    lengths = _lengths(line)
    assert lengths["driver"] == 16.0
    assert lengths["runtime"] == 20.0  # guest_runtime_vllm overrides guest_runtime
    assert lengths["models"] == round(size / GB * 12.0, 6)
    assert lengths["health"] == 1.0


def test_no_driver_no_reboot_and_no_runtime_no_models():
    line = timeline(D, driver=False, runtime=None, models=["llama3.1:8b"])
    assert [s.phase for s in line.spans] == ["health"]
    assert _lengths(line) == {"health": 1.0}


def test_baked_phases_take_no_time_and_are_marked_skipped():
    line = timeline(
        D,
        driver=True,
        runtime="ollama",
        models=["llama3.1:8b"],
        baked=frozenset({"driver", "reboot", "runtime"}),
    )
    spans = {s.phase: s for s in line.spans}
    assert [spans[p].skipped for p in ("driver", "reboot", "runtime", "models")] == [True] * 3 + [
        False
    ]
    assert [spans[p].end - spans[p].start for p in ("driver", "reboot", "runtime")] == [0.0] * 3
    assert spans["models"].start == line.agent_from
    assert not line.agent_away(line.agent_from + 0.001)  # no reboot to be away for


def test_stored_bytes_are_not_downloaded_but_the_load_is_paid():
    full = timeline(
        D, driver=False, runtime="llamacpp", models=["Llama-3.2-3B-Instruct-Q4_K_M.gguf"]
    )
    size = model_bytes("Llama-3.2-3B-Instruct-Q4_K_M.gguf")
    half = timeline(
        D,
        driver=False,
        runtime="llamacpp",
        models=["Llama-3.2-3B-Instruct-Q4_K_M.gguf"],
        stored_bytes=size // 2,
    )
    stored = timeline(
        D,
        driver=False,
        runtime="llamacpp",
        models=["Llama-3.2-3B-Instruct-Q4_K_M.gguf"],
        stored_bytes=size,
    )
    assert _lengths(full)["models"] == round(size / GB * 12.0, 6)
    assert _lengths(half)["models"] == pytest.approx(
        (size - size // 2) / GB * 10.0 + size / GB * 2.0
    )
    assert _lengths(stored)["models"] == round(size / GB * 2.0, 6)  # the load only
    models = next(s for s in stored.spans if s.phase == "models")
    assert models.fetch_end == models.start


def test_stored_bytes_fill_the_models_in_order():
    small, big = model_bytes("llama3.2:3b"), OLLAMA_8B
    line = timeline(
        D,
        driver=False,
        runtime="ollama",
        models=["llama3.2:3b", "llama3.1:8b"],
        stored_bytes=small + 1000,
    )
    models = next(s for s in line.spans if s.phase == "models")
    assert models.fetch == (("llama3.2:3b", small, small), ("llama3.1:8b", big, 1000))
    assert models.end - models.start == pytest.approx((big - 1000) / GB * 10.0)


def test_download_progress_is_linear_in_time_per_model():
    line = timeline(D, driver=False, runtime="ollama", models=["llama3.2:3b", "llama3.1:8b"])
    models = next(s for s in line.spans if s.phase == "models")
    first = model_bytes("llama3.2:3b") / GB * 10.0
    at = download_progress(models, models.start + first / 2, 10.0)
    assert at == {
        "model": "llama3.2:3b",
        "completed": model_bytes("llama3.2:3b") // 2,
        "total": model_bytes("llama3.2:3b"),
        "index": 1,
        "count": 2,
    }
    later = download_progress(models, models.start + first + 1.0, 10.0)
    assert later is not None
    assert (later["model"], later["index"], later["completed"]) == ("llama3.1:8b", 2, int(GB / 10))


def test_the_agent_is_away_until_packages_are_in_and_during_the_reboot():
    line = timeline(D, driver=True, runtime=None)
    reboot = next(s for s in line.spans if s.phase == "reboot")
    assert line.agent_away(4.9) and not line.agent_away(5.0)
    assert line.agent_away(reboot.start) and not line.agent_away(reboot.end)


def test_zero_durations_finish_at_once():
    line = timeline({}, driver=True, runtime="ollama", models=["llama3.1:8b"])
    assert line.end == 0.0 and not line.agent_away(0.0)


def test_the_realistic_profile_sets_only_guest_keys_and_scales():
    assert set(REALISTIC) <= set(KEYS)
    assert all(value > 0 for value in REALISTIC.values())
    half = profile("realistic", 0.5)
    assert half["guest_dkms"] == REALISTIC["guest_dkms"] / 2
    with pytest.raises(KeyError, match="realistic"):
        profile("fast")


def test_model_sizes_by_name_tag_alias_and_file():
    assert model_bytes("llama3.1:8b") == 4_920_753_328
    assert model_bytes("llama3.1") == model_bytes("llama3.1:latest") == 4_920_753_328
    assert model_bytes("/var/lib/llama/Llama-3.2-3B-Instruct-Q4_K_M.gguf") == 2_019_377_600
    assert model_bytes("someone/unknown-model") == SIZES["llama3.1:8b"][0]
    assert all(source for _size, source in SIZES.values())


def test_the_bench_selects_the_profile_at_its_scale():
    from bench.simctl import durations_for, guest_durations

    both = guest_durations(0.2)
    assert {k: both[k] for k in durations_for(0.2)} == durations_for(0.2)
    assert both["guest_dkms"] == pytest.approx(REALISTIC["guest_dkms"] * 0.2)
    assert both["guest_pull_s_per_gb"] == pytest.approx(REALISTIC["guest_pull_s_per_gb"] * 0.2)
