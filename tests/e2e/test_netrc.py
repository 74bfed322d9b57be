"""A ~/.netrc entry for the Proxmox host does not replace aihost's credentials.

requests, left without an auth of its own, reads ~/.netrc (or $NETRC) and sends the
host's entry as HTTP Basic, overwriting the `Authorization: PVEAPIToken=...` header: every
request would then be refused as unauthenticated, though the token is right.
"""

from __future__ import annotations

from urllib.parse import urlparse

from aihost_testing import run_aihost

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}


def test_a_netrc_entry_for_the_host_leaves_the_token_header(sim, tmp_path, monkeypatch):
    host = urlparse(sim.server.url).hostname
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {host} login someone password not-the-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    # every request authenticated as the inventory's token, none refused
    assert {(r["auth"], r["status"] == 401) for r in sim.requests()} == {
        (sim.server.token_id, False)
    }
