"""connect(): credentials and auth choice from the inventory; `api: sim` over real HTTPS."""

from __future__ import annotations

import pytest
import responses

from provision.errors import InputError
from provision.inventory.model import Inventory
from provision.pve.connect import connect, wants_password

API = "https://pve.example:8006/api2/json"


def _inv(host: dict, gpus: dict | None = None) -> Inventory:
    return Inventory.model_validate({"hosts": {"pve1": host}, "gpus": gpus or {}})


TOKEN = {"id": "aihost@pve!prov", "secret_env": "T_SECRET"}
PASSWORD = {"user": "root@pam", "secret_env": "P_SECRET"}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    monkeypatch.setenv("T_SECRET", "token-secret-value")
    monkeypatch.setenv("P_SECRET", "root-password-value")


@responses.activate
def test_token_host():
    responses.get(f"{API}/version", json={"data": {"version": "8.4.2"}})
    client = connect(
        _inv({"api": "https://pve.example:8006", "node": "node-a", "token": TOKEN}), "pve1"
    )
    assert (client.host_name, client.node, client.auth_id) == ("pve1", "node-a", TOKEN["id"])
    assert not client.is_root_ticket
    assert client.request_count() == 0  # connecting sends nothing
    client.get("/version")
    assert responses.calls[0].request.headers["Authorization"] == (
        "PVEAPIToken=aihost@pve!prov=token-secret-value"
    )


def test_node_defaults_to_the_host_entry_name():
    client = connect(_inv({"api": "https://pve.example:8006", "token": TOKEN}), "pve1")
    assert client.node == "pve1"


def test_missing_secret_is_input_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv("T_SECRET")
    with pytest.raises(InputError, match="T_SECRET"):
        connect(_inv({"api": "https://pve.example:8006", "token": TOKEN}), "pve1")


def test_secret_from_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("file-secret\n")
    token = {"id": "aihost@pve!prov", "secret_file": str(secret)}
    client = connect(_inv({"api": "https://pve.example:8006", "token": token}), "pve1")
    assert client.session.headers["Authorization"] == "PVEAPIToken=aihost@pve!prov=file-secret"


def test_unknown_host_is_input_error():
    with pytest.raises(InputError, match="no host named 'pve9'"):
        connect(_inv({"api": "https://pve.example:8006", "token": TOKEN}), "pve9")


def test_auth_choice_token_password_and_raw_gpu():
    both = {"api": "https://pve.example:8006", "token": TOKEN, "password": PASSWORD}
    mapped = {"g1": {"host": "pve1", "mapping": "g1", "vram_gb": 24}}
    raw = {"g1": {"host": "pve1", "pci": "0000:01:00", "vram_gb": 24}}
    assert not wants_password(_inv(both, mapped), "pve1")
    assert wants_password(_inv(both, raw), "pve1")
    only_pw = {"api": "https://pve.example:8006", "password": PASSWORD}
    assert wants_password(_inv(only_pw), "pve1")
    client = connect(_inv(both, raw), "pve1")
    assert client.is_root_ticket and client.auth_id == "root@pam"
    assert "Authorization" not in client.session.headers
