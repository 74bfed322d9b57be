"""Turn what a user typed (catalog name, Ollama tag, Hugging Face repo, --params) into a model."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field, replace

from provision.errors import InputError
from provision.models.catalog import Catalog, ModelEntry, load_catalog
from provision.models.quant import find_quant_in

SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([bm])(?:$|[-_])", re.IGNORECASE)
PARAMS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bBmM]?)\s*$")


@dataclass(frozen=True)
class ResolvedModel:
    """A model with the numbers the estimator needs.

    kind is "catalog" (a catalog name), "ollama" (an Ollama tag), "hf" (a Hugging Face
    repository) or "params" (only a size is known; the attention shape is borrowed from the
    catalog model closest in size, named in shape_from). quant is the quantization the
    reference implies (an Ollama tag carries one; a Hugging Face repository is bf16), or None.
    """

    ref: str
    kind: str
    params_b: float
    layers: int
    kv_heads: int
    head_dim: int
    default_context: int
    max_context: int
    entry: ModelEntry | None = None
    quant: str | None = None
    shape_from: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        """The catalog name, or the reference as typed."""
        return self.entry.name if self.entry else self.ref

    @property
    def kv_bytes_per_token(self) -> int:
        """fp16 K and V for one token across all layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim * 2


def parse_params(text: str) -> float:
    """Parse a parameter count such as '13B', '1.5b', '500M' or '13' into billions."""
    match = PARAMS_RE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise InputError(
            f"cannot read '{text}' as a parameter count", hint="write it like 13B, 1.5B or 500M"
        )
    value = float(match.group(1))
    return value / 1000 if match.group(2).lower() == "m" else value


def from_entry(
    entry: ModelEntry, ref: str, kind: str, quant: str | None, notes: tuple[str, ...] = ()
) -> ResolvedModel:
    """A ResolvedModel carrying a catalog entry's numbers."""
    return ResolvedModel(
        ref=ref,
        kind=kind,
        params_b=entry.params_b,
        layers=entry.layers,
        kv_heads=entry.kv_heads,
        head_dim=entry.head_dim,
        default_context=entry.default_context,
        max_context=entry.max_context,
        entry=entry,
        quant=quant,
        notes=notes,
    )


def from_params(
    params_b: float,
    ref: str | None = None,
    notes: tuple[str, ...] = (),
    catalog: Catalog | None = None,
) -> ResolvedModel:
    """A model known only by size; its KV shape is borrowed from the closest catalog model."""
    cat = catalog or load_catalog()
    nearest = min(cat.models, key=lambda m: abs(math.log(m.params_b / params_b)))
    note = (
        f"attention shape unknown: the KV cache is estimated with {nearest.title}'s "
        f"({nearest.layers} layers, {nearest.kv_heads} KV heads, head dim {nearest.head_dim})"
    )
    return ResolvedModel(
        ref=ref or f"{params_b:g}B",
        kind="params",
        params_b=params_b,
        layers=nearest.layers,
        kv_heads=nearest.kv_heads,
        head_dim=nearest.head_dim,
        default_context=min(nearest.default_context, 8192),
        max_context=nearest.max_context,
        shape_from=nearest.name,
        notes=(*notes, note),
    )


def resolve_model(ref: str, catalog: Catalog | None = None) -> ResolvedModel:
    """Resolve a catalog name, an Ollama tag ('llama3.1:70b-instruct-q4_K_M') or a Hugging
    Face repository ('Qwen/Qwen2.5-7B-Instruct'); InputError with suggestions otherwise.

    An Ollama tag of a family the catalog does not know but with a size in it
    ('codellama:13b') resolves by size alone, with a note saying so.
    """
    cat = catalog or load_catalog()
    text = ref.strip()
    if not text:
        raise InputError("empty model name")
    entry = cat.by_name(text)
    if entry:
        return from_entry(entry, text, "catalog", None)
    if text.lower().startswith("hf.co/") or text.lower().startswith("huggingface.co/"):
        return _resolve_gguf_repo(text, cat)
    if "/" in text and ":" not in text:
        entry = cat.by_hf(text)
        if entry:
            return from_entry(entry, text, "hf", "bf16")
        raise _unknown(text, cat, [h for m in cat.models for h in m.hf])
    return _resolve_ollama(text, cat)


def _resolve_ollama(text: str, cat: Catalog) -> ResolvedModel:
    name, _, tag = text.partition(":")
    name = name.removeprefix("library/").lower()
    tag = tag or "latest"
    family = cat.family(name)
    quant = find_quant_in(tag)
    if family:
        best: tuple[int, ModelEntry] | None = None
        for entry in family:
            for known in entry.ollama.tags:
                known_tag = known.split(":", 1)[1]
                matches = tag.lower() == known_tag or tag.lower().startswith(known_tag + "-")
                if matches and (best is None or len(known_tag) > best[0]):
                    best = (len(known_tag), entry)
        if best is not None:
            entry = best[1]
            return from_entry(entry, text, "ollama", quant.name if quant else entry.ollama.quant)
        tags = ", ".join(t for m in family for t in m.ollama.tags)
        raise InputError(
            f"unknown Ollama tag '{text}': the catalog knows {name} as {tags}",
            hint="or give the size explicitly: aihost models fit --params 13B",
        )
    size = SIZE_RE.match(tag)
    if size:
        value = float(size.group(1)) / (1000 if size.group(2).lower() == "m" else 1)
        close = difflib.get_close_matches(text.lower(), cat.all_keys(), n=2, cutoff=0.85)
        if close:
            raise InputError(
                f"unknown model '{text}'",
                hint=f"did you mean {' or '.join(close)}? (--params SIZE sizes any other model)",
            )
        notes: tuple[str, ...] = (f"'{text}' is not in the catalog; sized from its tag",)
        resolved = from_params(value, text, notes, cat)
        return replace(resolved, kind="ollama", quant=quant.name if quant else None)
    raise _unknown(text, cat, cat.all_keys())


def _resolve_gguf_repo(text: str, cat: Catalog) -> ResolvedModel:
    path, _, qtag = text.partition(":")
    base = path.rstrip("/").split("/")[-1].lower()
    base = re.sub(r"[-_.]gguf$", "", base)
    for entry in cat.models:
        if any(h.split("/")[-1].lower() == base for h in entry.hf):
            quant = find_quant_in(qtag) if qtag else None
            return from_entry(entry, text, "ollama", quant.name if quant else "q4_K_M")
    raise _unknown(text, cat, [h for m in cat.models for h in m.hf])


def _unknown(text: str, cat: Catalog, choices: list[str]) -> InputError:
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(text.lower(), list(lowered), n=3, cutoff=0.5)
    hint = (
        f"did you mean {', '.join(lowered[c] for c in close)}?"
        if close
        else "see `aihost models list --vram GB`, or give the size: --params 13B"
    )
    return InputError(f"unknown model '{text}'", hint=hint)
