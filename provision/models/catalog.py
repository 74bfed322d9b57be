"""The model catalog shipped with aihost (catalog.yaml) and lookups into it."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from provision.models.quant import get_quant

# libyaml's parser where PyYAML has it (same documents, ~10x faster than the pure-Python one)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CATALOG_FILE = "catalog.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OllamaInfo(_Frozen):
    """The model's tags in the Ollama library and the quantization those tags carry."""

    tags: list[str] = Field(min_length=1)
    quant: str

    @model_validator(mode="after")
    def _check(self) -> OllamaInfo:
        get_quant(self.quant)
        for tag in self.tags:
            if ":" not in tag:
                raise ValueError(f"ollama tag '{tag}' must be NAME:TAG")
        return self


class ModelEntry(_Frozen):
    """One model: size and attention shape (what weights and KV cache depend on)."""

    name: str
    title: str
    family: str
    params_b: float = Field(gt=0)
    layers: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    default_context: int = Field(gt=0)
    max_context: int = Field(gt=0)
    ollama: OllamaInfo
    hf: list[str] = []
    source: str

    @model_validator(mode="after")
    def _check(self) -> ModelEntry:
        if self.default_context > self.max_context:
            raise ValueError(f"{self.name}: default_context is larger than max_context")
        if not self.source.startswith("https://"):
            raise ValueError(f"{self.name}: source must be an https URL")
        return self

    @property
    def kv_bytes_per_token(self) -> int:
        """fp16 K and V for one token across all layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim * 2

    @property
    def default_tag(self) -> str:
        """The Ollama tag to pull for this model."""
        return self.ollama.tags[0]


class Catalog(_Frozen):
    """All catalog entries, with lookups by name, Ollama tag and Hugging Face repository."""

    version: int
    models: list[ModelEntry]

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        seen: set[str] = set()
        for entry in self.models:
            keys = [entry.name, *entry.ollama.tags, *(h.lower() for h in entry.hf)]
            for key in keys:
                if key in seen:
                    raise ValueError(f"catalog key '{key}' appears twice")
                seen.add(key)
        return self

    def by_name(self, name: str) -> ModelEntry | None:
        """The entry with this catalog name (case-insensitive)."""
        key = name.lower()
        return next((m for m in self.models if m.name == key), None)

    def by_hf(self, repo: str) -> ModelEntry | None:
        """The entry listing this Hugging Face repository (case-insensitive)."""
        key = repo.lower()
        return next((m for m in self.models if key in (h.lower() for h in m.hf)), None)

    def family(self, family: str) -> list[ModelEntry]:
        """Entries whose Ollama name is family (e.g. 'qwen2.5'), smallest first."""
        return sorted(
            (m for m in self.models if any(t.split(":")[0] == family for t in m.ollama.tags)),
            key=lambda m: m.params_b,
        )

    def all_keys(self) -> list[str]:
        """Every name a user may type: catalog names and Ollama tags (for suggestions)."""
        keys: list[str] = []
        for entry in self.models:
            keys.append(entry.name)
            keys.extend(entry.ollama.tags)
            keys.extend(t.split(":")[0] for t in entry.ollama.tags if t.endswith(":latest"))
        return keys


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """Load and validate the catalog shipped inside the package (cached)."""
    text = resources.files("provision.models").joinpath(CATALOG_FILE).read_text("utf-8")
    return parse_catalog(text)


def parse_catalog(text: str) -> Catalog:
    """Parse catalog YAML text; a broken catalog is a bug in aihost (RuntimeError)."""
    try:
        return Catalog.model_validate(yaml.load(text, Loader=SAFE_LOADER))
    except (ValidationError, yaml.YAMLError) as exc:
        raise RuntimeError(f"the model catalog is invalid: {exc}") from exc
