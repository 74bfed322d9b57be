"""How much of one or more GPUs a runtime can use for a model."""

from __future__ import annotations

from dataclasses import dataclass

from provision.errors import InputError
from provision.models.resolve import ResolvedModel
from provision.models.vram import DEFAULT_CONTEXT, GIB

RUNTIMES = ("ollama", "vllm", "llamacpp")
OFFLOAD_RUNTIMES = ("ollama", "llamacpp")  # can put layers in system RAM (slowly); vLLM cannot
PER_GPU_RESERVE_GIB = 0.45  # Ollama keeps 457 MiB free on each GPU; the CUDA context needs some
VLLM_GPU_MEMORY_UTILIZATION = 0.9
LLAMACPP_DEFAULT_CONTEXT = 8192  # the inventory's llamacpp.context default


@dataclass(frozen=True)
class Capacity:
    """The GPUs a model runs on (tensor split over several) and what the runtime may use."""

    vram_gb: tuple[float, ...]
    runtime: str = "ollama"
    gpu_memory_utilization: float | None = None
    names: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        """All the cards' memory; a card's 'GB' label is GiB (see vram.py)."""
        return round(sum(self.vram_gb) * GIB)

    @property
    def utilization(self) -> float:
        """vLLM's --gpu-memory-utilization (0.9 unless given)."""
        return self.gpu_memory_utilization or VLLM_GPU_MEMORY_UTILIZATION

    @property
    def usable_bytes(self) -> int:
        """vLLM: total x gpu_memory_utilization; others: total minus a reserve per GPU."""
        if self.runtime == "vllm":
            return round(self.total_bytes * self.utilization)
        return round(self.total_bytes - len(self.vram_gb) * PER_GPU_RESERVE_GIB * GIB)

    def describe(self) -> str:
        """'rtx3090 (24 GB) gives 23.55 GiB usable (24.00 GiB, minus 0.45 GiB per GPU ...)'."""
        cards = [f"{v:g} GB" for v in self.vram_gb]
        if self.names:
            what = " + ".join(f"{n} ({c})" for n, c in zip(self.names, cards, strict=True))
        elif len(cards) == 1:
            what = f"a {cards[0]} GPU"
        else:
            what = " + ".join(cards) + " GPUs (tensor split)"
        verb = "gives" if len(cards) == 1 else "give"
        total = self.total_bytes / GIB
        if self.runtime == "vllm":
            how = f"{total:.2f} GiB x gpu_memory_utilization {self.utilization:g}"
        else:
            how = f"{total:.2f} GiB minus {PER_GPU_RESERVE_GIB} GiB per GPU for the CUDA context"
        return f"{what} {verb} {self.usable_bytes / GIB:.2f} GiB usable ({how})"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description."""
        return {
            "gpus": list(self.names),
            "vram_gb": list(self.vram_gb),
            "total_gib": round(self.total_bytes / GIB, 2),
            "usable_gib": round(self.usable_bytes / GIB, 2),
            "runtime": self.runtime,
        }


def make_capacity(
    vram_gb: list[float] | tuple[float, ...],
    runtime: str = "ollama",
    *,
    gpu_memory_utilization: float | None = None,
    names: list[str] | tuple[str, ...] = (),
) -> Capacity:
    """A Capacity, checking the inputs (InputError for an empty list or a bad runtime)."""
    if not vram_gb:
        raise InputError("no GPU given: the model-fit check needs at least one GPU's VRAM")
    if any(v <= 0 for v in vram_gb):
        raise InputError("VRAM sizes must be positive numbers of GB")
    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime '{runtime}' (known: {', '.join(RUNTIMES)})")
    return Capacity(tuple(float(v) for v in vram_gb), runtime, gpu_memory_utilization, tuple(names))


def runtime_context(model: ResolvedModel, cap: Capacity) -> tuple[int, str]:
    """The context the runtime will use when none is configured, and why."""
    if cap.runtime == "ollama":
        total_gib = cap.total_bytes / GIB
        ctx = 4096 if total_gib < 23 else 32768 if total_gib < 47 else 262144
        why = f"Ollama's default for {total_gib:.0f} GiB of VRAM"
    elif cap.runtime == "vllm":
        ctx, why = model.default_context, "vLLM's default (the model's max_position_embeddings)"
    elif cap.runtime == "llamacpp":
        ctx, why = LLAMACPP_DEFAULT_CONTEXT, "the llamacpp.context default"
    else:
        ctx, why = DEFAULT_CONTEXT, "aihost's default"
    if ctx > model.max_context:
        return model.max_context, f"{why}, capped at the model's maximum"
    return ctx, why
