"""Hostile inventory values: no injection into the YAML structure or into shell commands."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest
from test_render_helpers import HOSTILE, KEY, files, inventory, parse

from provision.cloudinit import render_user_data
from provision.cloudinit.passwd import hash_password
from provision.errors import InputError

TOP_KEYS_GPU_OLLAMA = {
    "hostname",
    "ssh_pwauth",
    "package_update",
    "package_upgrade",
    "users",
    "packages",
    "write_files",
    "runcmd",
    "power_state",
    "updates",
}
SAFE = [v for v in HOSTILE if "\u2028" not in v and "\x7f" not in v]

SHA = "ab" * 32  # a well-formed sha256 (the download is never made)


def render(vm, **kw):
    return render_user_data(inventory(vm), "box", **kw)


def shell_words(script: str) -> list[list[str]]:
    """Each line of a script split as the shell would (comments dropped)."""
    words = []
    for line in script.splitlines():
        try:
            words.append(shlex.split(line, comments=True))
        except ValueError:
            words.append([])
    return words


@pytest.mark.parametrize("value", SAFE)
def test_hostile_model_name_stays_data(value: str) -> None:
    doc = parse(render({"models": [value, "llama3.1"]}).text)
    assert set(doc) == TOP_KEYS_GPU_OLLAMA
    assert files(doc)["/etc/aihost/models"]["content"] == f"{value}\nllama3.1\n"
    setup = files(doc)["/usr/local/sbin/aihost-setup-runtime"]["content"]
    assert value not in setup or value in ("-", "...")  # read from the file, never in code


@pytest.mark.parametrize("value", SAFE)
def test_hostile_vllm_model_is_one_systemd_word(value: str) -> None:
    doc = parse(render({"runtime": "vllm", "models": [value]}).text)
    unit = files(doc)["/etc/systemd/system/vllm.service"]["content"]
    (line,) = [x for x in unit.splitlines() if x.startswith("ExecStart=")]
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%")
    assert line.startswith(f'ExecStart=/opt/vllm/bin/vllm serve "{escaped}" --host 127.0.0.1 ')


@pytest.mark.parametrize("value", SAFE)
def test_hostile_model_url_is_quoted_in_the_setup_script(value: str) -> None:
    url = "https://example.org/m/" + value
    doc = parse(render({"runtime": "llamacpp", "llamacpp": {"model_url": url, "sha256": SHA}}).text)
    setup = files(doc)["/usr/local/sbin/aihost-setup-runtime"]["content"]
    assert ["MODEL_URL=" + url] in shell_words(setup)
    model = [w for w in shell_words(setup) if w and w[0].startswith("MODEL=")]
    assert model and model[0][0].startswith("MODEL=/var/lib/aihost/models/")
    assert all(c.isalnum() or c in "._-" for c in model[0][0].rsplit("/", 1)[1])


@pytest.mark.parametrize("value", SAFE)
def test_hostile_secrets_stay_in_their_place(value: str) -> None:
    token = "hf_" + value
    rendered = render(
        {
            "runtime": "vllm",
            "hf_token": {"secret_env": "HF", "store_in_user_data": True},
            "user": {"name": "alice", "password": {"secret_env": "PW"}},
        },
        secret_reader=lambda ref, _w: {"HF": token, "PW": "pw" + value}[ref.secret_env],
    )
    doc = parse(rendered.text)
    assert doc["users"][0]["passwd"] == hash_password("box", "alice", "pw" + value)
    env = files(doc)["/etc/aihost/vllm.env"]["content"]
    assert env.count("\n") == 1 and env.startswith('HF_TOKEN="')
    masked = parse(rendered.masked())
    assert masked["users"][0]["passwd"] == "***"
    assert files(masked)["/etc/aihost/vllm.env"]["content"] == 'HF_TOKEN="***"\n'


@pytest.mark.parametrize("comment", SAFE)
def test_hostile_ssh_key_comment_is_one_key(comment: str) -> None:
    doc = parse(render({"user": {"name": "alice", "ssh_keys": [f"{KEY} {comment}", KEY]}}).text)
    assert doc["users"][0]["ssh_authorized_keys"] == [f"{KEY} {comment}", KEY]
    assert set(doc) == TOP_KEYS_GPU_OLLAMA


@pytest.mark.parametrize(
    "field,vm",
    [
        ("a model name", {"models": ["ok\nruncmd: [reboot]"]}),
        ("an SSH key", {"user": {"name": "alice", "ssh_keys": [KEY + "\nssh-rsa AAAA evil"]}}),
        (
            "llamacpp.model_url",
            {
                "runtime": "llamacpp",
                "llamacpp": {"model_url": "https://x/a\rb.gguf", "sha256": SHA},
            },
        ),
        ("a model name", {"models": ["line\u2028break"]}),
    ],
)
def test_line_breaks_are_refused(field: str, vm: dict) -> None:
    """The inventory refuses them already (provision/inventory/pveformats.py one_line)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="control character or line break"):
        render(vm)


def test_token_with_a_newline_is_refused() -> None:
    with pytest.raises(InputError, match="hf_token"):
        render(
            {"runtime": "vllm", "hf_token": {"secret_env": "HF", "store_in_user_data": True}},
            secret_reader=lambda _r, _w: "hf_a\nEVIL=1",
        )


def test_user_name_is_validated_by_the_inventory() -> None:
    with pytest.raises(ValueError):
        inventory({"user": {"name": "root; reboot"}})


def test_hostile_values_leave_scripts_shellcheck_clean(tmp_path) -> None:
    tool = shutil.which("shellcheck")
    if tool is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    value = SAFE[0] + SAFE[1] + SAFE[2] + SAFE[3]
    scripts = []
    for vm in (
        {"runtime": "llamacpp", "llamacpp": {"model_url": "https://x/" + value, "sha256": SHA}},
        {"runtime": "ollama", "models": [value], "listen": "::"},
        {"runtime": "vllm", "models": [value]},
    ):
        for item in files(parse(render(vm).text)).values():
            if item["content"].startswith("#!/bin/sh"):
                target = tmp_path / f"{len(scripts)}.sh"
                target.write_text(item["content"])
                scripts.append(str(target))
    # Level warning: the one info shellcheck gives here (SC2016, "expressions don't expand in
    # single quotes") is exactly the proof that $(reboot) and `id` stay literal.
    run = subprocess.run(
        [tool, "-s", "sh", "-S", "warning", *scripts], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout
