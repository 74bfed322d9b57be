"""The certificate pin holds through an HTTP(S) proxy (CONNECT tunnel, `HTTPS_PROXY`).

A real CONNECT proxy on 127.0.0.1 (tests/support/connect_proxy.py) sends every tunnel to
a TLS server with another certificate: aihost refuses it with its one-line TLS error
(exit 3) and that server receives no byte of HTTP, so neither the token header nor the
password. A proxy that tunnels honestly to the simulator works, uploads included.
"""

from __future__ import annotations

import pytest
from aihost_testing import run_aihost
from support.connect_proxy import connect_proxy, tls_impostor

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}
PASSWORD = "root-password-never-leaks-7f3a"


@pytest.fixture(autouse=True)
def _no_proxy_exceptions(monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("aihost: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _hostile_run(sim, tmp_path, monkeypatch, host: dict):
    """vm up through a proxy that tunnels to an impostor; returns (result, impostor, proxy)."""
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=host)
    with (
        tls_impostor(tmp_path / "impostor") as impostor,
        connect_proxy(redirect=(impostor.host, impostor.port)) as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("https_proxy", proxy.url)
        result = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    return result, impostor, proxy


def _assert_nothing_leaked(sim, impostor, proxy, secrets: list[str]) -> None:
    api = sim.server.url.removeprefix("https://")
    assert proxy.targets and set(proxy.targets) == {api}  # the tunnel was really used
    received = impostor.text()
    assert received == "", received[:200]  # no HTTP at all reached the impostor
    for secret in secrets:
        assert secret not in received
    assert sim.requests() == []


def test_token_pin_is_enforced_through_a_connect_proxy(sim, tmp_path, monkeypatch):
    result, impostor, proxy = _hostile_run(sim, tmp_path, monkeypatch, {})
    assert result.exit_code == 3
    line = _one_error_line(result)
    assert "does not match the pinned fingerprint" in line
    from provision.sim.certs import fingerprint

    assert fingerprint(tmp_path / "impostor" / "tls" / "pve-ssl.pem") in line  # what it saw
    _assert_nothing_leaked(sim, impostor, proxy, [sim.server.token_secret, "PVEAPIToken"])
    assert sim.server.token_secret not in result.stderr + result.stdout


def test_password_login_is_pinned_through_a_connect_proxy(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("AIHOST_TEST_ROOT_PW", PASSWORD)
    host = {"token": None, "password": {"user": "root@pam", "secret_env": "AIHOST_TEST_ROOT_PW"}}
    result, impostor, proxy = _hostile_run(sim, tmp_path, monkeypatch, host)
    assert result.exit_code == 3
    assert "does not match the pinned fingerprint" in _one_error_line(result)
    _assert_nothing_leaked(sim, impostor, proxy, [PASSWORD, "root@pam", "/access/ticket"])


def test_ca_file_is_enforced_through_a_connect_proxy(sim, tmp_path, monkeypatch):
    host = {"tls": {"ca_file": str(sim.server.cert_path)}}
    result, impostor, proxy = _hostile_run(sim, tmp_path, monkeypatch, host)
    assert result.exit_code == 3
    assert "TLS verification failed for host pve1" in _one_error_line(result)
    _assert_nothing_leaked(sim, impostor, proxy, [sim.server.token_secret, "PVEAPIToken"])


def test_an_honest_proxy_works_with_the_pin_uploads_included(sim, tmp_path, monkeypatch):
    """ISO delivery: the upload goes through the tunnel too; SSH is not involved at all."""
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host={"ssh": None})
    with connect_proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("https_proxy", proxy.url)
        result = run_aihost("-i", str(inventory), "vm", "up", "llm-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    assert set(proxy.targets) == {sim.server.url.removeprefix("https://")}
    assert any(r["path"].endswith("/upload") for r in sim.requests())


def test_snippet_upload_over_ssh_does_not_use_the_proxy(sim, tmp_path, monkeypatch):
    """SFTP goes straight to the node with its host key checked; the proxy sees only the API."""
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    with connect_proxy() as proxy:
        for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        result = run_aihost("-i", str(inventory), "vm", "up", "llm-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    assert set(proxy.targets) == {sim.server.url.removeprefix("https://")}
    assert not any(r["path"].endswith("/upload") for r in sim.requests())
