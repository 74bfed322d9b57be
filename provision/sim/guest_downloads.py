"""What the simulated guest's downloads find on the internet (part of the guest MODEL).

The model has no network: a URL first boot fetches is answered from this table of real
files (URL -> SHA-256 of the bytes the server returns). A URL not in it is answered as the
real `curl -fsSL` answers a missing file (exit 22, "The requested URL returned error:
404"), so an inventory's typo or a made-up checksum reaches the same verdict as on a real
guest: setup-llamacpp.sh's download step fails with the text the state file records.
"""

from __future__ import annotations

# unsloth/Llama-3.2-3B-Instruct-GGUF at revision e7d0997e49c9cb00d88b4c1a6a16aa894b0bbc31:
# Llama-3.2-3B-Instruct-Q4_K_M.gguf, 2,019,377,600 bytes (Hugging Face's LFS SHA-256).
LLAMA32_3B_Q4KM = (
    "https://huggingface.co/unsloth/Llama-3.2-3B-Instruct-GGUF/resolve/"
    "e7d0997e49c9cb00d88b4c1a6a16aa894b0bbc31/Llama-3.2-3B-Instruct-Q4_K_M.gguf"
)
KNOWN_FILES = {
    LLAMA32_3B_Q4KM: "6c99cc00ae910f6a532a80022cb4bc1939094527a089c29294b841c0bd87f74d",
}
CURL_404 = (22, "curl: (22) The requested URL returned error: 404")


def download_error(url: str, sha256: str) -> tuple[int, str] | None:
    """(exit code, stderr) of setup-llamacpp.sh's download of url checked against sha256,
    or None when the file arrives intact."""
    served = KNOWN_FILES.get(url)
    if served is None:
        return CURL_404
    if served != sha256:
        return 1, (
            f"aihost: the GGUF model from {url} has SHA-256 {served}, not the inventory's {sha256}"
        )
    return None
