"""Which catalog models fit a card, best first; which common cards hold an estimate."""

from __future__ import annotations

from typing import Any

from provision.models.capacity import make_capacity
from provision.models.catalog import ModelEntry, load_catalog
from provision.models.fit import FitResult, fit_model
from provision.models.quant import RECOMMENDED
from provision.models.vram import Estimate

# Card labels and their memory in GB as sold (a "24 GB" card is 24 GiB, see models/).
COMMON_CARDS = (
    ("RTX 3060", 12.0),
    ("RTX A4000", 16.0),
    ("RTX 3090/4090", 24.0),
    ("RTX 5090", 32.0),
    ("A100 40GB", 40.0),
    ("RTX A6000 / L40S", 48.0),
    ("A100/H100 80GB", 80.0),
)


def cards_that_fit(est: Estimate, runtime: str, parallel: int) -> list[str]:
    """The common cards (COMMON_CARDS) a single one of which holds est under runtime."""
    return [
        name
        for name, size in COMMON_CARDS
        if fit_model(
            None,
            [size],
            runtime=runtime,
            quant=est.quant.name,
            context=est.context,
            parallel=parallel,
            params_b=est.model.params_b,
        ).fits
    ]


def _best_quant(
    entry: ModelEntry, size: float, context: int, runtime: str
) -> tuple[str, FitResult] | None:
    """The first recommended quantization that fits, else the first that is tight."""
    quants = ("bf16",) if runtime == "vllm" else RECOMMENDED
    best = None
    for quant in quants:
        result = fit_model(entry.name, [size], runtime=runtime, quant=quant, context=context)
        if result.verdict == "fits":
            return quant, result
        if result.verdict == "tight" and best is None:
            best = (quant, result)
    return best


def rank_models(size: float, context: int, runtime: str) -> dict[str, Any]:
    """Every catalog model that fits a card of size GB at up to context tokens: its best
    quantization and numbers, largest model first, then the smallest need; and the GiB
    the runtime can use on that card."""
    rows: list[dict[str, Any]] = []
    for entry in load_catalog().models:
        ctx = min(context, entry.max_context)
        best = _best_quant(entry, size, ctx, runtime)
        if best is None or best[1].estimate is None:
            continue
        quant, result = best
        needs = best[1].estimate.gib()["total"]
        rows.append(
            {
                "model": entry.name,
                "ollama_tag": entry.default_tag,
                "params_b": entry.params_b,
                "quant": quant,
                "context": ctx,
                "needs_gib": needs,
                "headroom_gib": round(result.headroom_bytes / 2**30, 2),
                "largest_context": result.largest_context,
                "verdict": result.verdict,
            }
        )
    rows.sort(key=lambda r: (-float(r["params_b"]), float(r["needs_gib"])))
    usable = make_capacity([size], runtime).usable_bytes / 2**30
    return {"usable_gib": round(usable, 2), "models": rows}
