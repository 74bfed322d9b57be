"""`aihost render`: masked output, JSON shape, template overrides and template errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from aihost_testing import run_aihost

from provision.cloudinit.passwd import hash_password

INVENTORY = """\
version: 1
{extra}hosts:
  pve: {{api: sim}}
gpus:
  g1: {{host: pve, mapping: rtx, vram_gb: 24}}
vms:
  box:
    host: pve
    template: tpl
    gpu: g1
    runtime: vllm
    models: [Qwen/Qwen2.5-7B-Instruct]
    hf_token: {{secret_env: AIHOST_TEST_HF, store_in_user_data: true}}
    user: {{name: alice, password: {{secret_env: AIHOST_TEST_PW}}}}
"""
ENV = {"AIHOST_TEST_HF": "hf_topsecret123", "AIHOST_TEST_PW": "hunter2-pw"}


def write_inventory(tmp_path: Path, extra: str = "") -> str:
    path = tmp_path / "aihost.yaml"
    path.write_text(INVENTORY.format(extra=extra))
    return str(path)


def test_render_masks_secrets_by_default(tmp_path: Path) -> None:
    result = run_aihost("-i", write_inventory(tmp_path), "render", "box", env=ENV)
    assert result.exit_code == 0, result.stderr
    assert "hf_topsecret123" not in result.stdout + result.stderr
    assert "hunter2-pw" not in result.stdout + result.stderr
    doc = yaml.safe_load(result.stdout)
    assert doc["users"][0]["passwd"] == "***"


def test_render_show_secrets_and_json(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path)
    shown = run_aihost("-i", inv, "render", "box", "--show-secrets", env=ENV)
    assert "hf_topsecret123" in shown.stdout
    # the password is never in the user-data, not even with --show-secrets: only its hash
    assert "hunter2-pw" not in shown.stdout
    assert yaml.safe_load(shown.stdout)["users"][0]["passwd"] == hash_password(
        "box", "alice", "hunter2-pw"
    )
    result = run_aihost("-i", inv, "-o", "json", "render", "box", "--distro", "debian-12", env=ENV)
    data = json.loads(result.stdout)
    assert set(data) == {"vm", "distro", "sha256", "user_data"}
    assert data["vm"] == "box" and data["distro"] == "debian-12" and len(data["sha256"]) == 64
    assert "hf_topsecret123" not in result.stdout
    assert yaml.safe_load(data["user_data"])["apt"]


def test_masked_render_needs_no_secret(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path)
    result = run_aihost(
        "-i", inv, "-o", "json", "render", "box", env={"AIHOST_TEST_PW": "", "AIHOST_TEST_HF": ""}
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sha256"] is None
    assert yaml.safe_load(data["user_data"])["users"][0]["passwd"] == "***"
    assert "secret could not be read" in result.stderr


def test_missing_secret_with_show_secrets_is_an_input_error(tmp_path: Path) -> None:
    result = run_aihost(
        "-i",
        write_inventory(tmp_path),
        "render",
        "box",
        "--show-secrets",
        env={"AIHOST_TEST_PW": "x", "AIHOST_TEST_HF": ""},
    )
    assert result.exit_code == 2 and "AIHOST_TEST_HF" in result.stderr


def test_templates_dir_overrides_one_file(tmp_path: Path) -> None:
    override = tmp_path / "tpl"
    (override / "units").mkdir(parents=True)
    (override / "units" / "blacklist-nouveau.conf.j2").write_text("# site {{ vm_name }}\n")
    inv = write_inventory(tmp_path, extra=f"templates_dir: {override}\n")
    result = run_aihost("-i", inv, "render", "box", env=ENV)
    assert result.exit_code == 0, result.stderr
    paths = {f["path"]: f for f in yaml.safe_load(result.stdout)["write_files"]}
    assert paths["/etc/modprobe.d/blacklist-nouveau.conf"]["content"] == "# site box\n"
    assert "/etc/systemd/system/vllm.service" in paths  # the others are the built-in ones


def test_template_error_names_file_and_line(tmp_path: Path) -> None:
    override = tmp_path / "tpl"
    (override / "units").mkdir(parents=True)
    (override / "units" / "vllm.service.j2").write_text("[Unit]\nX={{ no_such_value }}\n")
    inv = write_inventory(tmp_path, extra=f"templates_dir: {override}\n")
    result = run_aihost("-i", inv, "render", "box", env=ENV)
    assert result.exit_code == 2
    assert "vllm.service.j2, line 2" in result.stderr and "no_such_value" in result.stderr
    (override / "units" / "vllm.service.j2").write_text("[Unit]\n\n{% if %}\n")
    syntax = run_aihost("-i", inv, "render", "box", env=ENV)
    assert syntax.exit_code == 2 and "vllm.service.j2, line 3" in syntax.stderr


def test_template_rendering_bad_yaml_is_refused(tmp_path: Path) -> None:
    override = tmp_path / "tpl"
    (override / "runtime").mkdir(parents=True)
    (override / "runtime" / "vllm.yaml.j2").write_text("reboot_now: true\n")
    inv = write_inventory(tmp_path, extra=f"templates_dir: {override}\n")
    result = run_aihost("-i", inv, "render", "box", env=ENV)
    assert result.exit_code == 2 and "vllm.yaml.j2 rendered unexpected keys" in result.stderr


def test_help_does_not_import_jinja2() -> None:
    code = (
        "import sys\nfrom provision.cli.main import run\nrun(['--help'])\n"
        "run(['render', '--help'])\nassert 'jinja2' not in sys.modules, 'jinja2 imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
