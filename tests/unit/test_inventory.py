"""`aihost inventory check` on good and broken inventories: exit code, file:line, message."""

from __future__ import annotations

import json

import pytest
from aihost_testing import INVENTORIES, REPO_ROOT, run_aihost

BROKEN = REPO_ROOT / "tests" / "inventories" / "broken"

# file, line, what the message must say, what it must suggest
CASES = [
    ("unknown_key.yaml", 7, "unknown key 'memroy_gb'", "did you mean 'memory_gb'?"),
    ("wrong_type.yaml", 7, "vms.llm-box.cores", "(got 'eight')"),
    ("unknown_gpu.yaml", 9, "unknown GPU 'rtx4900'", "did you mean 'rtx4090'?"),
    ("unknown_host.yaml", 5, "unknown host 'pve2'", "did you mean 'pve1'?"),
    ("gpu_unknown_host.yaml", 5, "gpus.rtx4090.host: unknown host 'pve9'", "'pve1'"),
    ("duplicate_vmid.yaml", 11, "120 is already used by vms.a", "leave vmid out"),
    ("bad_pci.yaml", 6, "PCI address must look like 0000:01:00", "lspci"),
    ("inline_secret.yaml", 4, "secret written inline", "secret_env: VARIABLE_NAME"),
    ("inline_password.yaml", 7, "password written inline", "secret_file:"),
    ("bad_runtime.yaml", 7, "vms.llm-box.runtime", "'ollama', 'vllm', 'llamacpp' or 'none'"),
    ("no_source.yaml", 4, "give exactly one of template:", "STORAGE:import/FILE"),
    ("http_api.yaml", 3, "Proxmox only speaks HTTPS", "https://HOST:8006"),
    ("bad_yaml.yaml", 3, "not valid YAML", "expected ','"),
    ("duplicate_key.yaml", 8, "duplicate key 'cores'", "cores"),
    ("raw_pci_with_token.yaml", 8, "only be attached by root@pam", "aihost gpu map rtx4090"),
    ("bad_default.yaml", 6, "defaults.vm.memory_gb (merged into vms.llm-box)", "16 MiB to 4 TiB"),
    ("bad_ip.yaml", 8, "vms.llm-box.network.ip", "192.168.1.50/24"),
    ("bad_fingerprint.yaml", 6, "SHA-256 as 32 hex pairs", "fingerprint"),
    ("bad_token_id.yaml", 4, "user@realm!tokenname", "aihost@pve!prov"),
    # pve-access-control create_ticket: a user name without @realm is a failed login
    ("password_user_without_realm.yaml", 4, "user must be NAME@REALM", "root@pam"),
    ("bake_typo.yaml", 7, "bake.gpu-base.drivr: unknown key 'drivr'", "did you mean 'driver'?"),
]


@pytest.mark.parametrize("name", sorted(p.name for p in INVENTORIES.glob("*.yaml")))
def test_every_example_inventory_is_valid(name):
    result = run_aihost("-i", str(INVENTORIES / name), "inventory", "check")
    assert result.exit_code == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize(("name", "line", "message", "hint"), CASES, ids=[c[0] for c in CASES])
def test_broken_inventory_is_one_clear_line_with_file_and_line(name, line, message, hint):
    path = BROKEN / name
    result = run_aihost("-i", str(path), "inventory", "check")
    assert result.exit_code == 2
    error_lines = result.stderr.strip().splitlines()
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].startswith(f"aihost: error: {path}:{line}: "), error_lines[0]
    assert message in error_lines[0]
    assert hint in error_lines[0]
    assert "Traceback" not in result.stderr


def test_every_broken_inventory_is_covered():
    assert {c[0] for c in CASES} == {p.name for p in BROKEN.glob("*.yaml")}


def test_inline_secret_value_is_never_echoed():
    result = run_aihost("-i", str(BROKEN / "inline_secret.yaml"), "inventory", "check")
    assert "8d7c5b2e" not in result.stderr + result.stdout


def test_missing_inventory_file():
    result = run_aihost("-i", "/nonexistent/aihost.yaml", "inventory", "check")
    assert result.exit_code == 2
    assert "inventory file not found" in result.stderr


def test_no_inventory_given_says_how(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_aihost("inventory", "check")
    assert result.exit_code == 2
    assert "AIHOST_INVENTORY" in result.stderr


def test_inventory_from_environment_variable():
    result = run_aihost(
        "inventory", "check", env={"AIHOST_INVENTORY": str(INVENTORIES / "demo.yaml")}
    )
    assert result.exit_code == 0


def test_check_json_shape():
    result = run_aihost(
        "-i", str(INVENTORIES / "homelab.example.yaml"), "-o", "json", "inventory", "check"
    )
    data = result.json()
    assert data["valid"] is True
    assert data["hosts"] == ["pve1"]
    assert data["gpus"] == ["rtx4090"]
    assert data["vms"] == ["llm-box", "vllm-box"]
    assert isinstance(data["warnings"], list)


def test_error_json_shape():
    result = run_aihost("-o", "json", "-i", str(BROKEN / "unknown_gpu.yaml"), "inventory", "check")
    assert result.exit_code == 2
    data = result.json()
    assert data["exit_code"] == 2
    assert data["kind"] == "InventoryError"
    assert "rtx4900" in data["error"]


def test_show_merges_defaults_and_shows_secret_references_only():
    result = run_aihost(
        "-i", str(INVENTORIES / "homelab.example.yaml"), "-o", "json", "inventory", "show"
    )
    data = result.json()
    vm = data["vms"]["llm-box"]
    assert vm["cores"] == 8 and vm["memory_gb"] == 32
    assert data["hosts"]["pve1"]["token"] == {"secret_env": "PVE_TOKEN", "id": "aihost@pve!prov"}


def test_schema_is_json_schema_with_the_format_keys():
    result = run_aihost("inventory", "schema")
    schema = json.loads(result.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"hosts", "gpus", "vms", "defaults"} <= set(schema["properties"])
    assert "source" not in schema["properties"]


def test_pci_addresses_are_normalised():
    from provision.inventory import parse_inventory

    inv = parse_inventory(
        "hosts: {pve1: {api: sim}}\ngpus: {g1: {host: pve1, pci: '01:00', vram_gb: 12}}\n", "x"
    )
    assert inv.gpus["g1"].pci == "0000:01:00"


def test_merge_keys_and_anchors_work():
    from provision.inventory import parse_inventory

    text = "hosts: {pve1: {api: sim}}\nbase: &base {host: pve1, template: t, cores: 2}\n"
    with pytest.raises(Exception, match="unknown key 'base'"):
        parse_inventory(text, "x")
    text = (
        "hosts: {pve1: {api: sim}}\n"
        "vms:\n  a: &a {host: pve1, template: t, cores: 2}\n  b:\n    <<: *a\n    cores: 6\n"
    )
    inv = parse_inventory(text, "x")
    assert inv.vms["a"].cores == 2 and inv.vms["b"].cores == 6
