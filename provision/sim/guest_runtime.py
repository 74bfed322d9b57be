"""What runtime a simulated guest's user-data serves (part of the guest MODEL): its
systemd unit, the address it binds, its models and the settings it runs with."""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.sim.guest_userdata import (
    DEFAULT_PORTS,
    MODELS_PATH,
    RUNTIME_UNITS,
    CloudConfig,
)


@dataclass(frozen=True)
class Runtime:
    """The LLM runtime the user-data sets up as a systemd unit."""

    name: str  # ollama | vllm | llamacpp
    unit: str  # systemd unit name, e.g. llama-server.service
    host: str
    port: int
    models: list[str]


def runtime_of(config: CloudConfig) -> Runtime | None:
    """The first runtime (ollama, vllm, llamacpp) whose unit file the user-data writes."""
    if not config.valid:
        return None
    for name, path in RUNTIME_UNITS.items():
        unit_text = config.files.get(path)
        if unit_text is None:
            continue
        host, port = _bind(name, unit_text)
        return Runtime(name, path.rsplit("/", 1)[1], host, port, _models(name, config, unit_text))
    return None


def _bind(name: str, unit_text: str) -> tuple[str, int]:
    host, port = "127.0.0.1", DEFAULT_PORTS[name]
    if name == "ollama":
        match = re.search(r"OLLAMA_HOST=\"?(?:https?://)?([^\s\":]*)(?::(\d+))?", unit_text)
        if match:
            host = match.group(1) or host
            port = int(match.group(2)) if match.group(2) else port
    else:
        if match := re.search(r"--port[= ](\d+)", unit_text):
            port = int(match.group(1))
        if match := re.search(r"--host[= ]([^\s\"]+)", unit_text):
            host = match.group(1)
    return host, port


def _models(name: str, config: CloudConfig, unit_text: str) -> list[str]:
    listed = [
        line.strip()
        for line in config.files.get(MODELS_PATH, "").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    if not listed:
        pattern = r"vllm serve\s+([^\s\"]+)" if name == "vllm" else r"(?:-m|--model)[= ]([^\s\"]+)"
        match = re.search(pattern, unit_text)
        listed = [match.group(1)] if match and name != "ollama" else []
    if name == "ollama":
        return [m if ":" in m else f"{m}:latest" for m in listed]
    return listed[:1]  # vLLM and llama-server serve one model per process


def _int(pattern: str, text: str) -> int | None:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None


def ollama_default_context(vram_mib: int) -> int:
    """Ollama's context length when OLLAMA_CONTEXT_LENGTH is unset, by VRAM (ollama
    docs/context-length.mdx: < 24 GiB: 4k, 24-48 GiB: 32k, >= 48 GiB: 256k)."""
    if vram_mib >= 48 * 1024:
        return 262144
    return 32768 if vram_mib >= 24 * 1024 else 4096


def runtime_settings(runtime: Runtime, unit_text: str, vram_mib: int) -> dict[str, int | None]:
    """Context length and parallel sequences the runtime reports running, from the unit
    the user-data wrote, as aihost-health reads them: Ollama's /api/ps context_length and
    the server's OLLAMA_NUM_PARALLEL; vLLM's /v1/models max_model_len and its
    --max-num-seqs; llama-server's /props default_generation_settings.n_ctx (-c divided
    among -np slots) and total_slots. None: the guest reports no value."""
    if runtime.name == "ollama":
        context = _int(r"OLLAMA_CONTEXT_LENGTH=\"?(\d+)", unit_text)
        loaded = bool(runtime.models)  # /api/ps lists a model once health loaded one
        return {
            "context": (context or ollama_default_context(vram_mib)) if loaded else None,
            "parallel": _int(r"OLLAMA_NUM_PARALLEL=\"?(\d+)", unit_text),
        }
    if runtime.name == "vllm":
        return {
            "context": _int(r"--max-model-len[= ](\d+)", unit_text),
            "parallel": _int(r"--max-num-seqs[= ](\d+)", unit_text),
        }
    total = _int(r"(?:-c|--ctx-size)[= ](\d+)", unit_text)
    slots = _int(r"(?:-np|--parallel)[= ](\d+)", unit_text) or 1
    return {"context": total // slots if total else None, "parallel": slots}
