"""Does a model fit: verdict, headroom, the largest context that fits, what to try instead."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from provision.errors import InputError, ModelFitError
from provision.models.capacity import OFFLOAD_RUNTIMES, Capacity, make_capacity, runtime_context
from provision.models.catalog import load_catalog
from provision.models.quant import FALLBACK_ORDER, get_quant
from provision.models.resolve import ResolvedModel, from_entry, from_params, resolve_model
from provision.models.vram import GIB, Estimate, estimate

TIGHT_FRACTION = 0.10  # weights are estimated to within ~10%: less headroom than that is tight


@dataclass
class FitResult:
    """One model against one VM's GPUs. estimate is None only when verdict is 'unchecked'."""

    ref: str
    verdict: str  # fits, tight, does-not-fit, cpu-offload or unchecked
    capacity: Capacity
    estimate: Estimate | None = None
    context_source: str = "given"
    largest_context: int = 0
    suggestions: list[str] = field(default_factory=list)
    warning: str | None = None

    @property
    def fits(self) -> bool:
        """True for 'fits' and 'tight'."""
        return self.verdict in ("fits", "tight")

    @property
    def headroom_bytes(self) -> int:
        """Usable VRAM minus the estimate (negative when it does not fit)."""
        need = self.estimate.total_bytes if self.estimate else 0
        return self.capacity.usable_bytes - need

    def summary(self) -> str:
        """'llama3.1:70b (q4_K_M, 8192-token context) needs 43.0 GiB (...) but ...'."""
        est = self.estimate
        if est is None:
            return f"{self.ref}: {self.warning}"
        b = est.gib()
        seqs = f", {est.parallel} parallel sequences" if est.parallel > 1 else ""
        link = "and" if self.fits else "but"
        return (
            f"{self.ref} ({est.quant.name}, {est.context}-token context{seqs}) needs "
            f"{b['total']:.2f} GiB (weights {b['weights']:.2f} + KV cache {b['kv_cache']:.2f} "
            f"+ overhead {b['overhead']:.2f}) {link} {self.capacity.describe()}"
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready result; sizes in GiB (2^30 bytes)."""
        return {
            "model": self.ref,
            "verdict": self.verdict,
            "units": "GiB (2^30 bytes); vram_gb is the card's label, which is GiB",
            "estimate": self.estimate.to_dict() if self.estimate else None,
            "context_source": self.context_source,
            "vram": self.capacity.to_dict(),
            "headroom_gib": round(self.headroom_bytes / GIB, 2),
            "largest_context": self.largest_context,
            "suggestions": list(self.suggestions),
            "warning": self.warning,
        }


def largest_context(model: ResolvedModel, quant: str, cap: Capacity, parallel: int = 1) -> int:
    """The longest context (multiple of 256, at most the model's maximum) that fits; 0 if
    even the weights and overhead alone do not fit."""
    base = estimate(model=model, quant=quant, context=1, parallel=parallel)
    free = cap.usable_bytes - base.weights_bytes - base.overhead_bytes
    if free <= 0:
        return 0
    tokens = min(free // (model.kv_bytes_per_token * parallel), model.max_context)
    return int(tokens // 256 * 256) if tokens >= 256 else int(tokens)


def fit_model(
    ref: str | None,
    vram_gb: list[float] | tuple[float, ...],
    *,
    runtime: str = "ollama",
    quant: str | None = None,
    context: int | None = None,
    parallel: int = 1,
    params_b: float | None = None,
    allow_cpu_offload: bool = False,
    gpu_memory_utilization: float | None = None,
    gpu_names: list[str] | tuple[str, ...] = (),
) -> FitResult:
    """Estimate a model against GPUs and give a verdict; never raises for a misfit."""
    cap = make_capacity(
        vram_gb, runtime, gpu_memory_utilization=gpu_memory_utilization, names=gpu_names
    )
    if ref is not None and params_b is None:
        model = resolve_model(ref)
    elif params_b is not None:
        model = from_params(params_b, ref)
    else:
        raise InputError("give a model name or a parameter count (--params 13B)")
    if quant is None and model.quant is None and runtime == "vllm":
        quant = "bf16"
    source = "given"
    if context is None:
        context, source = runtime_context(model, cap)
    est = estimate(model=model, quant=quant, context=context, parallel=parallel)
    result = FitResult(
        ref=ref or model.ref, verdict="fits", capacity=cap, estimate=est, context_source=source
    )
    result.largest_context = largest_context(model, est.quant.name, cap, parallel)
    headroom = result.headroom_bytes
    if headroom >= TIGHT_FRACTION * est.total_bytes:
        return result
    result.suggestions = suggestions(est, cap, result.largest_context, allow_cpu_offload)
    if headroom >= 0:
        result.verdict = "tight"
        result.warning = (
            f"{result.summary()}: only {headroom / GIB:.2f} GiB to spare, within the "
            "estimate's margin of error"
        )
    elif allow_cpu_offload and runtime in OFFLOAD_RUNTIMES:
        result.verdict = "cpu-offload"
        result.warning = (
            f"{result.summary()}: {runtime} will keep {-headroom / GIB:.2f} GiB of it in "
            "system RAM and run several times slower"
        )
    else:
        result.verdict = "does-not-fit"
    return result


def suggestions(
    est: Estimate, cap: Capacity, max_context: int, allow_cpu_offload: bool = False
) -> list[str]:
    """What would fit instead: a shorter context, a smaller quantization, a smaller model."""
    out: list[str] = []
    model = est.model
    if 1024 <= max_context < est.context:
        out.append(
            f"a context of at most {max_context} tokens fits "
            "(context: in the inventory, --context here)"
        )
    for name in FALLBACK_ORDER:
        smaller = get_quant(name)
        if smaller.bits >= est.quant.bits:
            continue
        alt = estimate(model=model, quant=name, context=est.context, parallel=est.parallel)
        if alt.total_bytes <= cap.usable_bytes:
            out.append(f"quantization {name} needs {alt.total_bytes / GIB:.2f} GiB")
            break
    if model.entry is not None:
        family = model.entry.family
        smaller_models = [
            m for m in load_catalog().models if m.family == family and m.params_b < model.params_b
        ]
        for entry in sorted(smaller_models, key=lambda m: -m.params_b):
            other = from_entry(entry, entry.default_tag, "ollama", entry.ollama.quant)
            ctx = min(est.context, entry.max_context)
            quant = est.quant.name if cap.runtime == "vllm" else entry.ollama.quant
            alt = estimate(model=other, quant=quant, context=ctx, parallel=est.parallel)
            if alt.total_bytes <= cap.usable_bytes:
                out.append(
                    f"the smaller {entry.title} ({entry.default_tag}, {quant}) needs "
                    f"{alt.total_bytes / GIB:.2f} GiB"
                )
                break
    if cap.runtime in OFFLOAD_RUNTIMES and not allow_cpu_offload:
        out.append("or accept slow CPU offload with --allow-cpu-offload")
    return out


def check_vm_models(
    models: list[str],
    gpus_vram_gb: list[float],
    *,
    runtime: str,
    context: int | None,
    allow_cpu_offload: bool,
    parallel: int = 1,
    gpu_memory_utilization: float | None = None,
    gpu_names: list[str] | tuple[str, ...] = (),
) -> list[FitResult]:
    """Check each model a VM serves against its GPUs (models load one at a time).

    Raises ModelFitError (exit 2) naming the numbers and what to try instead when a model
    does not fit; with allow_cpu_offload, runtimes that can offload (ollama, llamacpp) get
    a warning instead. A model the catalog cannot size comes back 'unchecked' with a
    warning; a near-miss of a catalog name (likely a typo) is an InputError.
    """
    results: list[FitResult] = []
    cap = make_capacity(
        gpus_vram_gb, runtime, gpu_memory_utilization=gpu_memory_utilization, names=gpu_names
    )
    for ref in models:
        try:
            result = fit_model(
                ref,
                gpus_vram_gb,
                runtime=runtime,
                context=context,
                parallel=parallel,
                allow_cpu_offload=allow_cpu_offload,
                gpu_memory_utilization=gpu_memory_utilization,
                gpu_names=gpu_names,
            )
        except InputError as exc:
            if _looks_like_typo(ref):
                raise
            results.append(
                FitResult(
                    ref=ref,
                    verdict="unchecked",
                    capacity=cap,
                    warning=f"model '{ref}' is not in aihost's catalog, its fit was not checked "
                    f"({exc.message})",
                )
            )
            continue
        if result.verdict == "does-not-fit":
            hint = "; ".join(result.suggestions) or None
            if allow_cpu_offload and runtime not in OFFLOAD_RUNTIMES:
                hint = f"{runtime} cannot offload to the CPU; " + (hint or "")
            raise ModelFitError(f"does not fit: {result.summary()}", hint=hint)
        results.append(result)
    return results


def _looks_like_typo(ref: str) -> bool:
    """A reference of a known Ollama family, or very close to a catalog name."""
    cat = load_catalog()
    family = ref.split(":", 1)[0].removeprefix("library/").lower()
    if ":" in ref and cat.family(family):
        return True
    return bool(difflib.get_close_matches(ref.lower(), cat.all_keys(), n=1, cutoff=0.85))
