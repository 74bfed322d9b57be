"""How big the simulated guest's models are (part of the guest MODEL).

One table, model name -> bytes the runtime downloads and then loads, each figure with
where it was read. The guest timeline (provision.sim.guest_timeline) turns these into
download and load times; the model store (h18-store) counts what is already stored.

Ollama names are sizes as Ollama's own `GET /api/tags` reports them (`size`: the sum of
the model's layers, which is what `/api/pull` downloads), copied from public recordings
of that endpoint with the digest they name. Hugging Face repositories (vLLM) are the
`metadata.total_size` of the repository's `model.safetensors.index.json` (the tensor
bytes; every shard adds a small JSON header). A GGUF file is its LFS size on Hugging
Face. Docs: docs/guest-timing.md.
"""

from __future__ import annotations

# name -> (bytes, source)
SIZES: dict[str, tuple[int, str]] = {
    "llama3.1:8b": (
        4_920_753_328,
        "Ollama /api/tags, digest 46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e",
    ),
    "llama3.2:3b": (
        2_019_393_189,
        "Ollama /api/tags (llama3.2:latest = 3b), digest "
        "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
    ),
    "llama3.3:70b": (
        42_520_413_916,
        "Ollama /api/tags, digest a6eb4748fd2990ad2952b2335a95a7f952d1a06119a0aa6a2df6cd052a93a3fa",
    ),
    "qwen2.5:7b": (4_683_087_332, "Ollama /api/tags (qwen2.5:latest = 7b)"),
    "mistral:7b": (
        4_372_824_384,
        "Ollama /api/tags (mistral:latest = 7b), digest "
        "6577803aa9a036369e481d648a2baebb381ebc6e897f2bb9a766a2aa7bfbc1cf",
    ),
    "Qwen/Qwen2.5-7B-Instruct": (
        15_231_233_024,
        "Hugging Face Qwen/Qwen2.5-7B-Instruct model.safetensors.index.json metadata.total_size",
    ),
    "Llama-3.2-3B-Instruct-Q4_K_M.gguf": (
        2_019_377_600,
        "Hugging Face unsloth/Llama-3.2-3B-Instruct-GGUF at e7d0997e, LFS size",
    ),
}
ALIASES = {
    "llama3.1:latest": "llama3.1:8b",
    "llama3.2:latest": "llama3.2:3b",
    "llama3.3:latest": "llama3.3:70b",
    "qwen2.5:latest": "qwen2.5:7b",
    "mistral:latest": "mistral:7b",
}
# A name not in the table: taken as the most common pull, an 8B model at Q4_K_M.
UNKNOWN = "llama3.1:8b"


def model_bytes(name: str) -> int:
    """Bytes of a model as the guest's runtime downloads it: Ollama names with or without
    a tag (`:latest` by default), Hugging Face repositories, GGUF paths or URLs (by file
    name); a name the table lacks counts as an 8B Q4_K_M model (docs/guest-timing.md)."""
    key = name.strip()
    if key in SIZES:
        return SIZES[key][0]
    if "/" not in key and ":" not in key:
        key += ":latest"
    key = ALIASES.get(key, key)
    if key in SIZES:
        return SIZES[key][0]
    base = key.rsplit("/", 1)[-1].split("?", 1)[0]
    return SIZES.get(base, SIZES[UNKNOWN])[0]
