"""Verdicts, headroom, largest context, suggestions and the VM refusal."""

from __future__ import annotations

import pytest

from provision.errors import InputError, ModelFitError
from provision.models import GIB, check_vm_models, fit_model, largest_context, resolve_model
from provision.models.capacity import PER_GPU_RESERVE_GIB, make_capacity


def test_small_model_fits_a_24gb_card_with_ollama_default_context():
    r = fit_model("llama3.1:8b", [24])
    assert r.verdict == "fits"
    assert r.estimate.context == 32768  # Ollama's default from 23 GiB of VRAM
    assert r.headroom_bytes == r.capacity.usable_bytes - r.estimate.total_bytes


def test_70b_does_not_fit_one_24gb_card_and_suggests_a_smaller_model():
    r = fit_model("llama3.1:70b", [24], context=8192)
    assert r.verdict == "does-not-fit"
    assert r.largest_context == 0
    assert any("llama3.1:8b" in s for s in r.suggestions)


def test_several_gpus_sum_vram_minus_a_reserve_each():
    cap = make_capacity([24, 24])
    assert cap.usable_bytes == round((48 - 2 * PER_GPU_RESERVE_GIB) * GIB)
    assert fit_model("llama3.1:70b", [24, 24], context=8192).fits


def test_vllm_uses_gpu_memory_utilization():
    cap = make_capacity([24], "vllm", gpu_memory_utilization=0.5)
    assert cap.usable_bytes == 12 * GIB
    r = fit_model("Qwen/Qwen2.5-7B-Instruct", [24], runtime="vllm", context=8192)
    assert r.estimate.quant.name == "bf16" and r.fits
    assert not fit_model(
        "Qwen/Qwen2.5-7B-Instruct", [24], runtime="vllm", context=8192, gpu_memory_utilization=0.5
    ).fits


def test_tight_when_headroom_is_within_the_margin_of_error():
    r = fit_model("qwen2.5:72b", [48], context=8192)
    assert r.verdict == "tight"
    assert r.warning and "to spare" in r.warning


def test_largest_context_is_the_limit():
    model = resolve_model("llama3.1:8b")
    cap = make_capacity([12])
    ctx = largest_context(model, "q4_K_M", cap)
    assert ctx % 256 == 0
    assert fit_model("llama3.1:8b", [12], context=ctx).fits
    assert not fit_model("llama3.1:8b", [12], context=ctx + 2048).fits


def test_context_too_long_suggests_a_shorter_one():
    r = fit_model("llama3.1:8b", [12], context=131072)
    assert r.verdict == "does-not-fit"
    assert any(f"at most {r.largest_context} tokens" in s for s in r.suggestions)


def test_smaller_quant_suggested_when_it_fits():
    r = fit_model("qwen2.5:32b", [24], quant="q8_0", context=4096)
    assert r.verdict == "does-not-fit"
    assert any(s.startswith("quantization q") for s in r.suggestions)


def test_check_vm_models_refuses_with_numbers_and_suggestion():
    with pytest.raises(ModelFitError) as err:
        check_vm_models(
            ["llama3.1:70b"], [12.0], runtime="ollama", context=8192, allow_cpu_offload=False
        )
    text = str(err.value)
    assert err.value.exit_code == 2
    assert "GiB" in text and "12 GB" in text and "llama3.1:8b" in text


def test_cpu_offload_downgrades_to_a_warning_for_ollama_only():
    results = check_vm_models(
        ["llama3.1:70b"], [12.0], runtime="ollama", context=8192, allow_cpu_offload=True
    )
    assert results[0].verdict == "cpu-offload" and "system RAM" in results[0].warning
    with pytest.raises(ModelFitError, match="cannot offload"):
        check_vm_models(
            ["meta-llama/Llama-3.1-70B-Instruct"],
            [24.0],
            runtime="vllm",
            context=8192,
            allow_cpu_offload=True,
        )


def test_unknown_custom_model_is_unchecked_but_a_typo_is_an_error():
    results = check_vm_models(
        ["my-finetune"], [24.0], runtime="ollama", context=None, allow_cpu_offload=False
    )
    assert results[0].verdict == "unchecked" and "not in aihost's catalog" in results[0].warning
    with pytest.raises(InputError):
        check_vm_models(
            ["llama3.1:13b"], [24.0], runtime="ollama", context=None, allow_cpu_offload=False
        )


def test_each_model_is_checked_on_its_own():
    results = check_vm_models(
        ["llama3.2:3b", "qwen2.5:7b"],
        [12.0],
        runtime="ollama",
        context=None,
        allow_cpu_offload=False,
    )
    assert [r.verdict for r in results] == ["fits", "fits"]
