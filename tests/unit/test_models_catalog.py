"""The shipped catalog and how names, tags and repositories resolve."""

from __future__ import annotations

import pytest

from provision.errors import InputError
from provision.models import QUANTS, get_quant, load_catalog, parse_params, resolve_model
from provision.models.catalog import parse_catalog


def test_catalog_has_at_least_twenty_models_each_with_a_source():
    cat = load_catalog()
    assert len(cat.models) >= 20
    for entry in cat.models:
        assert entry.source.startswith("https://huggingface.co/"), entry.name
        assert entry.default_context <= entry.max_context


@pytest.mark.parametrize(
    ("ref", "shape"),
    [  # layers / KV heads / head dim from the guest README (config.json values)
        ("llama3.1:8b", (32, 8, 128)),
        ("llama3.1:70b", (80, 8, 128)),
        ("mistral:7b", (32, 8, 128)),
        ("qwen2.5:7b", (28, 4, 128)),
        ("qwen2.5:14b", (48, 8, 128)),
        ("qwen2.5:32b", (64, 8, 128)),
        ("qwen2.5:72b", (80, 8, 128)),
        ("gemma2:9b", (42, 8, 256)),
        ("gemma2:27b", (46, 16, 128)),
    ],
)
def test_shapes_match_the_readme(ref, shape):
    m = resolve_model(ref)
    assert (m.layers, m.kv_heads, m.head_dim) == shape


def test_required_families_are_present():
    names = {m.name for m in load_catalog().models}
    for wanted in (
        "llama3.2-1b",
        "llama3.3-70b",
        "qwen2.5-0.5b",
        "qwen2.5-72b",
        "mixtral-8x7b",
        "gemma2-2b",
        "phi3-mini",
        "phi3.5-mini",
        "deepseek-r1-distill-qwen-7b",
    ):
        assert wanted in names


def test_every_quant_in_the_brief_exists_with_sane_bits():
    for name in (
        "fp16",
        "bf16",
        "q8_0",
        "q6_K",
        "q5_K_M",
        "q5_0",
        "q4_K_M",
        "q4_K_S",
        "q4_0",
        "q3_K_M",
        "q2_K",
    ):
        assert name in QUANTS
    bits = [QUANTS[n].bits for n in ("fp16", "q8_0", "q6_K", "q5_K_M", "q4_K_M", "q4_0", "q2_K")]
    assert bits == sorted(bits, reverse=True)
    assert get_quant("Q4_K_M").name == "q4_K_M"
    assert get_quant("f16").name == "fp16"


def test_ollama_tag_with_size_and_quant():
    m = resolve_model("llama3.1:70b-instruct-q4_K_M")
    assert m.entry is not None and m.entry.name == "llama3.1-70b"
    assert m.quant == "q4_K_M"
    assert resolve_model("qwen2.5:7b-instruct-q8_0").quant == "q8_0"
    assert resolve_model("llama3.1").entry.name == "llama3.1-8b"  # :latest
    assert resolve_model("deepseek-r1:8b-llama-distill-q4_K_M").entry.name == (
        "deepseek-r1-distill-llama-8b"
    )


def test_hugging_face_repositories_resolve():
    m = resolve_model("Qwen/Qwen2.5-7B-Instruct")
    assert m.entry.name == "qwen2.5-7b" and m.quant == "bf16"
    gguf = resolve_model("hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q5_K_M")
    assert gguf.entry.name == "llama3.2-3b" and gguf.quant == "q5_K_M"


def test_unknown_tag_of_a_known_family_lists_the_known_tags():
    with pytest.raises(InputError) as err:
        resolve_model("llama3.1:13b")
    assert "llama3.1:8b" in str(err.value)


def test_unknown_name_suggests_close_ones():
    with pytest.raises(InputError) as err:
        resolve_model("qwen25-7b")
    assert "qwen2.5-7b" in str(err.value)


def test_unknown_family_with_a_size_is_sized_from_the_tag():
    m = resolve_model("codellama:13b-instruct-q4_0")
    assert m.params_b == 13 and m.quant == "q4_0" and m.entry is None


def test_parse_params():
    assert parse_params("13B") == 13
    assert parse_params("1.5b") == 1.5
    assert parse_params("500M") == 0.5
    with pytest.raises(InputError):
        parse_params("thirteen")


def test_broken_catalog_is_reported():
    with pytest.raises(RuntimeError, match="invalid"):
        parse_catalog("version: 1\nmodels:\n  - name: x\n")
