"""The VRAM formula, and estimated weights against published download sizes."""

from __future__ import annotations

import pytest

from provision.errors import InputError
from provision.models import GB, GIB, estimate, get_quant, kv_cache_bytes, weights_bytes


def test_weights_are_parameters_times_bits_over_eight():
    assert weights_bytes(8.0, get_quant("fp16")) == 16_000_000_000
    assert weights_bytes(10.0, get_quant("q4_0")) == 5_625_000_000
    assert weights_bytes(1.0, get_quant("q8_0")) == 1_062_500_000


def test_kv_cache_formula_llama31_8b_at_8k_is_one_gib():
    # 2 x 32 layers x 8 KV heads x 128 x 8192 tokens x 2 bytes = exactly 1 GiB
    assert kv_cache_bytes(32, 8, 128, 8192) == GIB
    assert kv_cache_bytes(32, 8, 128, 8192, parallel=4) == 4 * GIB
    assert kv_cache_bytes(32, 8, 128, 8192, bytes_per_element=1) == GIB // 2


def test_estimate_breakdown_adds_up_and_uses_catalog_shape():
    est = estimate("llama3.1:70b", context=8192)
    assert est.quant.name == "q4_K_M"
    assert est.kv_cache_bytes == kv_cache_bytes(80, 8, 128, 8192)
    assert est.total_bytes == est.weights_bytes + est.kv_cache_bytes + est.overhead_bytes
    # The guest README's worked example: about 43.8 GiB all in; ours is within 5%.
    assert est.total_bytes / GIB == pytest.approx(43.8, rel=0.05)


def test_context_and_parallel_scale_only_the_kv_cache():
    one = estimate("qwen2.5:7b", context=4096)
    four = estimate("qwen2.5:7b", context=4096, parallel=4)
    double = estimate("qwen2.5:7b", context=8192)
    assert four.weights_bytes == one.weights_bytes
    assert four.kv_cache_bytes == 4 * one.kv_cache_bytes
    assert double.kv_cache_bytes == 2 * one.kv_cache_bytes


def test_explicit_quant_overrides_the_tag_and_tag_overrides_the_default():
    assert estimate("llama3.1:8b-instruct-q8_0").quant.name == "q8_0"
    assert estimate("llama3.1:8b-instruct-q8_0", quant="q2_K").quant.name == "q2_K"
    assert estimate("mistral:7b").quant.name == "q4_0"  # what Ollama publishes
    assert estimate("llama3.1-8b").quant.name == "q4_K_M"
    assert estimate("Qwen/Qwen2.5-7B-Instruct").quant.name == "bf16"


def test_params_only_estimate_borrows_a_shape_and_says_so():
    est = estimate(params_b=13.0, quant="q4_K_M", context=4096)
    assert est.weights_bytes == weights_bytes(13.0, get_quant("q4_K_M"))
    assert est.model.kind == "params"
    assert est.model.shape_from is not None
    assert any("shape unknown" in n for n in est.model.notes)


def test_context_beyond_the_model_maximum_is_refused():
    with pytest.raises(InputError, match="at most 8192"):
        estimate("gemma2:9b", context=16384)


def test_bad_quant_is_input_error_with_suggestion():
    with pytest.raises(InputError) as err:
        estimate("llama3.1:8b", quant="q4_K_Z")
    assert "q4_K_M" in str(err.value)


# Published sizes. Ollama library download sizes (decimal GB) of each tag, from
# https://ollama.com/library/<name>/tags; the quantization is the one those tags carry.
OLLAMA_SIZES = [
    ("llama3.2:1b", 1.3),
    ("llama3.2:3b", 2.0),
    ("llama3.1:8b", 4.9),
    ("llama3.1:70b", 43.0),
    ("llama3.3:70b", 43.0),
    ("qwen2.5:1.5b", 0.986),
    ("qwen2.5:3b", 1.9),
    ("qwen2.5:7b", 4.7),
    ("qwen2.5:14b", 9.0),
    ("qwen2.5:32b", 20.0),
    ("qwen2.5:72b", 47.0),
    ("mistral:7b", 4.1),
    ("mixtral:8x7b", 26.0),
    ("gemma2:2b", 1.6),
    ("gemma2:9b", 5.4),
    ("gemma2:27b", 16.0),
    ("phi3:3.8b", 2.2),
    ("deepseek-r1:14b", 9.0),
    ("deepseek-r1:32b", 20.0),
]


@pytest.mark.parametrize(("tag", "published_gb"), OLLAMA_SIZES)
def test_estimated_weights_match_ollama_download_sizes(tag, published_gb):
    est = estimate(tag)
    assert est.weights_bytes / GB == pytest.approx(published_gb, rel=0.10)


# llama.cpp's quantize tool lists each type's file size for Llama-3-8B (8.03B parameters)
# in GiB: tools/quantize/quantize.cpp, QUANT_OPTIONS.
LLAMACPP_LLAMA3_8B_GIB = [
    ("q8_0", 7.96),
    ("q6_K", 6.14),
    ("q5_K_M", 5.33),
    ("q5_0", 5.21),
    ("q4_K_M", 4.58),
    ("q4_K_S", 4.37),
    ("q4_0", 4.34),
    ("q3_K_M", 3.74),
    ("q2_K", 2.96),
]


@pytest.mark.parametrize(("quant", "published_gib"), LLAMACPP_LLAMA3_8B_GIB)
def test_quant_table_matches_llamacpp_file_sizes(quant, published_gib):
    est = estimate(params_b=8.03, quant=quant)
    assert est.weights_bytes / GIB == pytest.approx(published_gib, rel=0.10)
