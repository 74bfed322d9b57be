"""The VRAM estimate: weights + KV cache + overhead, in bytes (shown in GiB).

Units: every size is computed in bytes. Estimates and capacities are shown in GiB (2^30
bytes), the unit nvidia-smi reports (MiB). Download sizes (Ollama, Hugging Face) are
decimal GB (10^9 bytes). A card's label ("24 GB") is its memory in binary units: an RTX
3090 shows 24576 MiB = 24 GiB in nvidia-smi, so the inventory's vram_gb is read as GiB.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.errors import InputError
from provision.models.quant import Quant, get_quant
from provision.models.resolve import ResolvedModel, from_params, resolve_model

GIB = 1024**3
GB = 10**9
KV_BYTES_PER_ELEMENT = 2  # fp16 K/V cache, the default of Ollama, llama.cpp and vLLM
COMPUTE_OVERHEAD_GIB = 1.0  # CUDA context, compute buffers and activations (single sequence)
DEFAULT_CONTEXT = 8192  # assumed when neither the caller nor a runtime decides
DEFAULT_QUANT = "q4_K_M"


@dataclass(frozen=True)
class Estimate:
    """The VRAM one model needs, broken down, in bytes."""

    model: ResolvedModel
    quant: Quant
    context: int
    parallel: int
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int

    @property
    def total_bytes(self) -> int:
        """Weights + KV cache + overhead."""
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes

    @property
    def kv_bytes_per_token(self) -> int:
        """KV cache bytes each token of context costs (for one sequence)."""
        return self.model.kv_bytes_per_token

    def gib(self) -> dict[str, float]:
        """The breakdown in GiB, rounded to 0.01."""
        return {
            "weights": to_gib(self.weights_bytes),
            "kv_cache": to_gib(self.kv_cache_bytes),
            "overhead": to_gib(self.overhead_bytes),
            "total": to_gib(self.total_bytes),
        }

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready description (sizes in GiB and in bytes)."""
        m = self.model
        return {
            "model": m.name,
            "ref": m.ref,
            "kind": m.kind,
            "params_b": m.params_b,
            "shape": {
                "layers": m.layers,
                "kv_heads": m.kv_heads,
                "head_dim": m.head_dim,
                "borrowed_from": m.shape_from,
            },
            "quant": {"name": self.quant.name, "bits_per_weight": self.quant.bits},
            "context": self.context,
            "parallel": self.parallel,
            "gib": self.gib(),
            "bytes": {
                "weights": self.weights_bytes,
                "kv_cache": self.kv_cache_bytes,
                "overhead": self.overhead_bytes,
                "total": self.total_bytes,
            },
            "weights_download_gb": round(self.weights_bytes / GB, 2),
            "notes": list(m.notes),
        }


def to_gib(value: float) -> float:
    """Bytes to GiB, rounded to 0.01."""
    return round(value / GIB, 2)


def weights_bytes(params_b: float, quant: Quant) -> int:
    """parameters x bits per weight / 8."""
    return round(params_b * 1e9 * quant.bits / 8)


def kv_cache_bytes(
    layers: int,
    kv_heads: int,
    head_dim: int,
    context: int,
    parallel: int = 1,
    bytes_per_element: int = KV_BYTES_PER_ELEMENT,
) -> int:
    """2 (K and V) x layers x kv_heads x head_dim x context x bytes per element x sequences."""
    return 2 * layers * kv_heads * head_dim * context * bytes_per_element * parallel


def estimate(
    model_ref: str | None = None,
    *,
    params_b: float | None = None,
    quant: str | None = None,
    context: int | None = None,
    parallel: int = 1,
    model: ResolvedModel | None = None,
) -> Estimate:
    """Estimate the VRAM to serve a model (by reference, by size, or already resolved).

    quant defaults to what the reference implies (an Ollama tag's quantization, bf16 for a
    Hugging Face repository), else q4_K_M; context defaults to 8192 tokens, capped at the
    model's maximum. An InputError is raised for unknown models, quantizations, or a
    context beyond what the model supports.
    """
    if model is None:
        if model_ref is not None:
            model = resolve_model(model_ref)
        elif params_b is not None:
            model = from_params(params_b)
        else:
            raise InputError("give a model name or a parameter count (--params 13B)")
    if params_b is not None and model.kind != "params":
        model = from_params(params_b, model.ref)
    if parallel < 1:
        raise InputError(f"parallel must be at least 1 (got {parallel})")
    chosen = get_quant(quant or model.quant or DEFAULT_QUANT)
    ctx = context if context is not None else min(DEFAULT_CONTEXT, model.max_context)
    if ctx < 1:
        raise InputError(f"context must be a positive number of tokens (got {ctx})")
    if ctx > model.max_context:
        raise InputError(
            f"{model.name} supports at most {model.max_context} tokens of context (asked {ctx})"
        )
    return Estimate(
        model=model,
        quant=chosen,
        context=ctx,
        parallel=parallel,
        weights_bytes=weights_bytes(model.params_b, chosen),
        kv_cache_bytes=kv_cache_bytes(model.layers, model.kv_heads, model.head_dim, ctx, parallel),
        overhead_bytes=round(COMPUTE_OVERHEAD_GIB * GIB),
    )
