"""Quantizations and their bits per weight (weights only; the KV cache stays fp16).

The bits are whole-file averages, as a GGUF of that type weighs on disk: llama.cpp mixes
block types inside one file (Q4_K_M keeps some tensors at Q6_K), so they sit above the
nominal block size. Reference: llama.cpp `tools/quantize/quantize.cpp` lists Llama-3-8B
(8.03B parameters) at Q4_K_M 4.58 GiB (4.9 bpw), Q6_K 6.14 GiB (6.6), Q8_0 7.96 GiB (8.5),
Q5_K_M 5.33 GiB (5.7); models with a smaller share of embedding weights come out a little
lower, so the table uses the usual planning values (Q4_K_M 4.8, Q4_0 4.5).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from provision.errors import InputError


@dataclass(frozen=True)
class Quant:
    """One quantization: its canonical name and effective bits per weight."""

    name: str
    bits: float
    note: str = ""


QUANTS: dict[str, Quant] = {
    q.name: q
    for q in (
        Quant("fp16", 16.0, "half precision, what vLLM serves by default"),
        Quant("bf16", 16.0, "bfloat16, same size as fp16"),
        Quant("q8_0", 8.5, "8-bit, near-lossless"),
        Quant("q6_K", 6.6, "6-bit k-quant"),
        Quant("q5_K_M", 5.7, "5-bit k-quant, medium"),
        Quant("q5_K_S", 5.5, "5-bit k-quant, small"),
        Quant("q5_0", 5.5, "5-bit legacy"),
        Quant("q4_K_M", 4.8, "4-bit k-quant, medium: Ollama's usual default"),
        Quant("q4_K_S", 4.6, "4-bit k-quant, small"),
        Quant("q4_0", 4.5, "4-bit legacy: Ollama's default for older library models"),
        Quant("q3_K_M", 3.9, "3-bit k-quant, noticeable quality loss"),
        Quant("q2_K", 3.0, "2-bit k-quant, large quality loss"),
    )
}

ALIASES = {
    "f16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "int8": "q8_0",
    "q8": "q8_0",
    "q6": "q6_K",
    "q5_k": "q5_K_M",
    "q4_k": "q4_K_M",
    "q4": "q4_K_M",
    "q3_k": "q3_K_M",
}

# Quantizations worth recommending, best quality first (below q4 quality drops visibly).
RECOMMENDED = ("fp16", "q8_0", "q6_K", "q5_K_M", "q4_K_M")
# Quantizations to try, best first, when suggesting a smaller one.
FALLBACK_ORDER = ("q8_0", "q6_K", "q5_K_M", "q4_K_M", "q4_K_S", "q4_0", "q3_K_M", "q2_K")

_BY_LOWER = {name.lower(): q for name, q in QUANTS.items()}


def get_quant(name: str) -> Quant:
    """The quantization called name (case-insensitive); InputError with suggestions if unknown."""
    key = name.strip().lower()
    key = ALIASES.get(key, key).lower()
    if key in _BY_LOWER:
        return _BY_LOWER[key]
    close = difflib.get_close_matches(key, list(_BY_LOWER), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(_BY_LOWER[c].name for c in close)}?" if close else ""
    known = ", ".join(QUANTS)
    raise InputError(
        f"unknown quantization '{name}' (known: {known})",
        hint=hint or None,
    )


def find_quant_in(text: str) -> Quant | None:
    """The quantization named inside an Ollama tag such as '70b-instruct-q4_K_M', if any."""
    parts = text.lower().replace(":", "-").split("-")
    for part in reversed(parts):
        key = ALIASES.get(part, part)
        if key in _BY_LOWER and key not in ("q4", "q8", "q6", "half"):
            return _BY_LOWER[key]
    return None
