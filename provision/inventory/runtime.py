"""The runtime settings of a VM (vLLM, llama.cpp, pinned versions) and what the running
runtime must report for them (context length, parallel sequences)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from provision.inventory.hosts import Strict
from provision.inventory.pveformats import one_line

Runtime = Literal["ollama", "vllm", "llamacpp", "none"]
Distro = Literal["ubuntu-24.04", "ubuntu-22.04", "debian-12"]
RUNTIME_PORTS = {"ollama": 11434, "vllm": 8000, "llamacpp": 8080, "none": 0}
# The versions the guest installs unless the inventory pins others (vms.NAME.versions).
# Ollama: release tag without the v (ollama.com/download/...?version=); vLLM: PyPI
# version; llama.cpp: release tag (bNNNN); driver_branch: NVIDIA's Ubuntu server branch.
DEFAULT_VERSIONS = {
    "ollama": "0.32.15",
    "vllm": "0.33.0",
    "llamacpp": "b10830",
    "driver_branch": "580",
}
HF_URL = "https://huggingface.co/{repo}/resolve/{revision}/{file}"

GuestPath = Annotated[str, StringConstraints(pattern=r"^/"), AfterValidator(one_line)]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+"), AfterValidator(one_line)]
HF_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
HfRepo = Annotated[str, StringConstraints(pattern=rf"^{HF_NAME}/{HF_NAME}$", max_length=200)]
HfFile = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._/-]*\.gguf$", max_length=300)
]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Revision = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]


class VllmSettings(Strict):
    """vLLM serving options."""

    gpu_memory_utilization: float = Field(0.9, gt=0.1, le=1.0)
    max_model_len: int = Field(8192, ge=256, le=2**24)


class LlamacppSettings(Strict):
    """llama.cpp server options: where the GGUF model comes from.

    A download (hf_repo + hf_file, or model_url) with its sha256, which first boot checks;
    or model_path alone, a GGUF the image already has (first boot fails without it)."""

    model_path: GuestPath | None = None
    model_url: HttpUrl | None = None
    hf_repo: HfRepo | None = None
    hf_file: HfFile | None = None
    hf_revision: Revision = "main"
    sha256: Sha256 | None = None
    context: int = Field(8192, ge=256, le=2**24)

    @model_validator(mode="after")
    def _source(self) -> LlamacppSettings:
        if (self.hf_repo is None) != (self.hf_file is None):
            raise PydanticCustomError(
                "gguf_source",
                "give hf_repo and hf_file together, e.g. hf_repo: "
                "unsloth/Llama-3.2-3B-Instruct-GGUF, hf_file: Llama-3.2-3B-Instruct-Q4_K_M.gguf",
            )
        if self.hf_repo is not None and self.model_url is not None:
            raise PydanticCustomError(
                "gguf_source", "give one download source: hf_repo/hf_file or model_url"
            )
        if self.download_url is not None and self.sha256 is None:
            raise PydanticCustomError(
                "gguf_sha256",
                "a downloaded model needs its sha256 (64 hex digits; Hugging Face "
                "shows it on the file's page as 'SHA256'), so first boot can check the file",
            )
        return self

    @property
    def download_url(self) -> str | None:
        """The URL first boot downloads the GGUF from (None: model_path only)."""
        if self.hf_repo and self.hf_file:
            return HF_URL.format(repo=self.hf_repo, revision=self.hf_revision, file=self.hf_file)
        return self.model_url

    @property
    def has_source(self) -> bool:
        """True when the model comes from somewhere: a download or a path in the image."""
        return self.download_url is not None or self.model_path is not None


class RuntimeVersions(Strict):
    """Pinned versions of what first boot installs (defaults: DEFAULT_VERSIONS)."""

    ollama: str = Field(DEFAULT_VERSIONS["ollama"], pattern=r"^\d+\.\d+\.\d+(-rc\d+)?$")
    vllm: str = Field(DEFAULT_VERSIONS["vllm"], pattern=r"^\d+\.\d+(\.\d+)*(\.post\d+)?$")
    llamacpp: str = Field(DEFAULT_VERSIONS["llamacpp"], pattern=r"^b\d+$")
    driver_branch: str = Field(DEFAULT_VERSIONS["driver_branch"], pattern=r"^\d{3}$")


def runtime_settings(
    runtime: str,
    context: int | None,
    parallel: int | None,
    vllm: VllmSettings,
    llamacpp: LlamacppSettings,
) -> dict[str, int | None]:
    """The context length (tokens per sequence) and parallel sequences the runtime is
    started with, and must report running; None: the inventory leaves it to the runtime.

    `context` (vms.NAME.context) wins over vllm.max_model_len and llamacpp.context."""
    if runtime == "vllm":
        return {"context": context or vllm.max_model_len, "parallel": parallel}
    if runtime == "llamacpp":
        return {"context": context or llamacpp.context, "parallel": parallel or 1}
    if runtime == "ollama":
        return {"context": context, "parallel": parallel}
    return {"context": None, "parallel": None}
