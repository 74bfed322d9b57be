"""models/ranking.py: the `models list` ranking and `models fit`'s common cards, on plain data."""

from __future__ import annotations

from provision.models import estimate, fit_model
from provision.models.ranking import COMMON_CARDS, cards_that_fit, rank_models


def test_ranking_is_largest_model_first_and_every_row_fits_the_card():
    ranked = rank_models(24.0, 8192, "ollama")
    rows = ranked["models"]
    assert rows, "a 24 GB card holds some catalog model"
    keys = [(-float(r["params_b"]), float(r["needs_gib"])) for r in rows]
    assert keys == sorted(keys)
    for row in rows:
        again = fit_model(
            row["model"], [24.0], runtime="ollama", quant=row["quant"], context=row["context"]
        )
        assert again.verdict == row["verdict"] in ("fits", "tight")
        assert row["needs_gib"] <= ranked["usable_gib"] + 1e-9 or row["verdict"] == "tight"


def test_a_bigger_card_ranks_at_least_the_models_a_smaller_one_does():
    small = {r["model"] for r in rank_models(12.0, 4096, "ollama")["models"]}
    large = {r["model"] for r in rank_models(80.0, 4096, "ollama")["models"]}
    assert small < large


def test_vllm_ranks_bf16_only():
    assert {r["quant"] for r in rank_models(80.0, 4096, "vllm")["models"]} == {"bf16"}


def test_common_cards_that_fit_are_a_suffix_of_the_sizes():
    small = cards_that_fit(estimate("llama3.1:8b", quant="q4_K_M", context=4096), "ollama", 1)
    assert small == [name for name, _ in COMMON_CARDS]  # an 8B q4 fits even the 12 GB card
    huge = cards_that_fit(estimate(None, params_b=400, quant="fp16", context=4096), "ollama", 1)
    assert huge == []
    mid = cards_that_fit(estimate(None, params_b=32, quant="q4_K_M", context=8192), "ollama", 1)
    names = [name for name, _ in COMMON_CARDS]
    assert mid and mid == names[len(names) - len(mid) :]
