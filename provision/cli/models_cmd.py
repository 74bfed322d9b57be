"""`aihost models fit|list`: which models fit which GPU, with the numbers."""

from __future__ import annotations

from typing import Any

import click

from provision.cli.context import CliContext
from provision.cli.options import with_params
from provision.cli.types import positive_float

RUNTIME_CHOICE = click.Choice(["ollama", "vllm", "llamacpp"])


@click.group("models")
def models() -> None:
    """Which models fit which GPU (sizes in GiB; a card's "24 GB" label is 24 GiB)."""


def _gpus(
    obj: CliContext, gpu: tuple[str, ...], vram: tuple[float, ...]
) -> tuple[list[float], list[str]]:
    from provision.errors import InputError

    if gpu and vram:
        raise InputError("give --gpu NAME (from the inventory) or --vram GB, not both")
    if gpu:
        inv = obj.load_inventory()
        return [inv.gpu(name).vram_gb for name in gpu], list(gpu)
    return list(vram), []


FIT_PARAMS = (
    click.argument("model", required=False),
    click.option(
        "--params", "params", metavar="SIZE", help="Size of a model not in the catalog, e.g. 13B."
    ),
    click.option(
        "--gpu", multiple=True, metavar="NAME", help="Inventory GPU (repeat for a tensor split)."
    ),
    click.option(
        "--vram",
        multiple=True,
        type=positive_float(),
        metavar="GB",
        help="Card memory in GB as labelled (repeat for several cards).",
    ),
    click.option(
        "--quant", metavar="Q", help="Quantization: fp16, q8_0, q6_K, q5_K_M, q4_K_M, q4_0..."
    ),
    click.option("--context", type=click.IntRange(min=1), metavar="N", help="Context tokens."),
    click.option(
        "--parallel",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Concurrent sequences (each gets its own KV cache).",
    ),
    click.option("--runtime", type=RUNTIME_CHOICE, default="ollama", show_default=True),
    click.option("--allow-cpu-offload", is_flag=True, help="Treat a misfit as slow CPU offload."),
)


@models.command("fit")
@with_params(*FIT_PARAMS)
@click.pass_obj
def fit(
    obj: CliContext,
    model: str | None,
    params: str | None,
    gpu: tuple[str, ...],
    vram: tuple[float, ...],
    quant: str | None,
    context: int | None,
    parallel: int,
    runtime: str,
    allow_cpu_offload: bool,
) -> None:
    """Estimate the VRAM MODEL needs and whether it fits a GPU.

    MODEL is a catalog name (llama3.1-8b), an Ollama tag (llama3.1:70b-instruct-q4_K_M) or a
    Hugging Face repository; use --params 13B for a model the catalog does not know.
    """
    from provision.errors import InputError
    from provision.models import get_quant, parse_params

    if model is None and params is None:
        raise InputError("give a MODEL or --params SIZE", hint="e.g. aihost models fit llama3.1:8b")
    if quant is not None:
        get_quant(quant)
    params_b = parse_params(params) if params else None
    vram_list, names = _gpus(obj, gpu, vram)
    if not vram_list:
        _estimate_only(obj, model, params_b, quant, context, parallel, runtime)
        return
    _verdict(
        obj,
        model,
        vram_list,
        names,
        params_b=params_b,
        quant=quant,
        context=context,
        parallel=parallel,
        runtime=runtime,
        allow_cpu_offload=allow_cpu_offload,
    )


def _estimate_only(
    obj: CliContext,
    model: str | None,
    params_b: float | None,
    quant: str | None,
    context: int | None,
    parallel: int,
    runtime: str,
) -> None:
    """No card given: the estimate, and which common cards would hold it."""
    from provision.models import estimate
    from provision.models.ranking import cards_that_fit

    est = estimate(model, params_b=params_b, quant=quant, context=context, parallel=parallel)
    cards = cards_that_fit(est, runtime, parallel)
    data: dict[str, Any] = {"estimate": est.to_dict(), "verdict": None, "fits_common_cards": cards}
    verdict = (
        f"fits: {', '.join(cards)} (give --gpu or --vram for a verdict)"
        if cards
        else "fits no single common card; several GPUs (repeat --vram) may hold it"
    )
    obj.emit(data, _estimate_text(est) + "\n" + verdict)


def _verdict(
    obj: CliContext, model: str | None, vram_list: list[float], names: list[str], **options: Any
) -> None:
    """The verdict on the given cards; exit 5 (ModelFitError) when it does not fit."""
    from provision.errors import ModelFitError
    from provision.models import fit_model

    result = fit_model(model, vram_list, gpu_names=names, **options)
    obj.emit(result.to_dict(), _fit_text(result))
    if result.verdict == "does-not-fit":
        error = ModelFitError(result.summary())
        error.reported = obj.json  # the verdict above is the JSON result
        raise error


def _estimate_text(est: Any) -> str:
    b = est.gib()
    m = est.model
    lines = [
        f"model     {m.name} ({m.params_b:g}B parameters, {m.layers} layers, "
        f"{m.kv_heads} KV heads x {m.head_dim})",
        f"quant     {est.quant.name} ({est.quant.bits:g} bits per weight)",
        f"context   {est.context} tokens x {est.parallel} sequence(s)",
        f"weights   {b['weights']:7.2f} GiB  ({est.weights_bytes / 1e9:.1f} GB download)",
        f"KV cache  {b['kv_cache']:7.2f} GiB  (fp16)",
        f"overhead  {b['overhead']:7.2f} GiB  (CUDA context, compute buffers)",
        f"total     {b['total']:7.2f} GiB",
    ]
    lines.extend(f"note      {n}" for n in m.notes)
    return "\n".join(lines)


def _fit_text(result: Any) -> str:
    est = result.estimate
    lines = [_estimate_text(est)]
    if result.context_source != "given":
        lines.append(f"          (context from {result.context_source})")
    lines.append(f"VRAM      {result.capacity.describe()}")
    lines.append(f"headroom  {result.headroom_bytes / 2**30:7.2f} GiB")
    lines.append(f"verdict   {result.verdict}")
    if result.largest_context:
        lines.append(f"largest context that fits: {result.largest_context} tokens")
    else:
        lines.append("largest context that fits: none (the weights alone do not fit)")
    lines.extend(f"try       {s}" for s in result.suggestions)
    return "\n".join(lines)


@models.command("list")
@click.option("--gpu", multiple=True, metavar="NAME", help="Only these inventory GPUs.")
@click.option(
    "--vram",
    type=positive_float(),
    metavar="GB",
    help="A card of this size instead of the inventory's GPUs.",
)
@click.option(
    "--context",
    type=click.IntRange(min=256),
    default=8192,
    show_default=True,
    metavar="N",
    help="Context tokens to plan for.",
)
@click.option("--runtime", type=RUNTIME_CHOICE, default="ollama", show_default=True)
@click.pass_obj
def list_models(
    obj: CliContext, gpu: tuple[str, ...], vram: float | None, context: int, runtime: str
) -> None:
    """What fits each GPU, best first (largest model, then best quantization)."""
    from provision.errors import InputError

    if vram is not None:
        if gpu:
            raise InputError("give --gpu NAME or --vram GB, not both")
        targets = [(f"{vram:g} GB card", vram)]
    else:
        inv = obj.load_inventory()
        chosen = list(gpu) or sorted(inv.gpus)
        if not chosen:
            raise InputError("the inventory lists no GPUs", hint="or use --vram GB")
        targets = [(name, inv.gpu(name).vram_gb) for name in chosen]
    from provision.models.ranking import rank_models

    groups = [
        {"gpu": name, "vram_gb": size, **rank_models(size, context, runtime)}
        for name, size in targets
    ]
    obj.emit(
        {"context": context, "runtime": runtime, "units": "GiB", "gpus": groups},
        _list_text(groups, context, runtime),
    )


def _list_text(groups: list[dict[str, Any]], context: int, runtime: str) -> str:
    out = []
    for group in groups:
        out.append(
            f"{group['gpu']}: {group['vram_gb']:g} GB, {group['usable_gib']:.2f} GiB "
            f"usable by {runtime}; models at {context} tokens of context, best first"
        )
        if not group["models"]:
            out.append("  nothing in the catalog fits")
        for r in group["models"]:
            out.append(
                f"  {r['model']:<32} {r['quant']:<7} needs {r['needs_gib']:6.2f} GiB  "
                f"headroom {r['headroom_gib']:6.2f}  max context {r['largest_context']}"
                + ("  (tight)" if r["verdict"] == "tight" else "")
            )
    return "\n".join(out)
