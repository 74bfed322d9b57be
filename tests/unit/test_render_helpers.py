"""Helpers shared by the render tests (imported by them), and tests of the escaping helpers."""

from __future__ import annotations

import shlex
import subprocess
from typing import Any

import pytest
import yaml

from provision.cloudinit.escape import env_file_quote, one_line, sh_quote, systemd_quote, yaml_quote
from provision.errors import InputError
from provision.inventory.model import Inventory

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9vZ2xlZ29vZ2xlZ29vZ2xl me@laptop"
HOSTILE = [
    'it\'s "quoted"',
    "$(reboot)",
    "`id`",
    "a # comment",
    "key: value",
    "- item",
    "{flow: map}",
    "100%",
    "back\\slash",
    "ünïcödé ☃ 😀",
    "yes",
    "~",
    "*alias",
    "&anchor",
    "!!python/object:os.system",
    "...",
    "---",
    "\u2028sep\u0085nel\x7fdel",
]


def inventory(vm: dict[str, Any] | None = None, *, gpu: bool = True, **extra: Any) -> Inventory:
    """An inventory with one VM 'box' (a GPU unless gpu=False) merged with vm's keys."""
    spec: dict[str, Any] = {
        "host": "pve",
        "template": "tpl",
        "models": ["llama3.1:8b"],
        "user": {"name": "alice", "ssh_keys": [KEY]},
    }
    if gpu:
        spec["gpu"] = "g1"
    spec.update(vm or {})
    return Inventory.model_validate(
        {
            "hosts": {"pve": {"api": "sim"}},
            "gpus": {"g1": {"host": "pve", "mapping": "rtx", "vram_gb": 24}},
            "vms": {"box": spec},
            **extra,
        }
    )


def parse(text: str) -> dict[str, Any]:
    """The user-data as data (asserting the #cloud-config header)."""
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def files(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """write_files by path."""
    return {item["path"]: item for item in doc.get("write_files", [])}


@pytest.mark.parametrize("value", HOSTILE + ["", "plain", "0o17", "1e3", "null"])
def test_yaml_quote_reads_back_as_the_same_string(value: str) -> None:
    assert yaml.safe_load(f"k: {yaml_quote(value)}\n") == {"k": value}


def test_yaml_quote_keeps_numbers_and_booleans_typed() -> None:
    assert yaml.safe_load(f"k: [{yaml_quote(1)}, {yaml_quote(0.5)}, {yaml_quote(True)}]") == {
        "k": [1, 0.5, True]
    }


@pytest.mark.parametrize("value", HOSTILE)
def test_sh_quote_is_one_word_for_the_shell(value: str) -> None:
    out = subprocess.run(
        ["sh", "-c", f"printf '%s' {sh_quote(value)}"], capture_output=True, check=True
    ).stdout.decode()
    assert out == value
    assert shlex.split(sh_quote(value)) == [value]


def test_systemd_and_env_file_quoting_escape_their_specials() -> None:
    assert systemd_quote('a"b$c%d\\e') == '"a\\"b$$c%%d\\\\e"'
    assert env_file_quote('x"$`\\') == '"x\\"\\$\\`\\\\"'


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "tab\there", "nul\x00", "ls\u2028", "nel\x85"])
def test_one_line_refuses_line_breaks_and_controls(value: str) -> None:
    with pytest.raises(InputError, match="control character or line break"):
        one_line(value, "a model name")


def test_yaml_is_parsed_by_libyaml_where_pyyaml_has_it() -> None:
    # the pure-Python parser took ~0.1 s of a converged `vm up` (templates and catalog)
    import yaml

    from provision.cloudinit import document as render
    from provision.models import catalog

    expected = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    assert render.SAFE_LOADER is expected and catalog.SAFE_LOADER is expected


def test_templates_compiled_once_are_loaded_from_the_cache_dir(monkeypatch, tmp_path) -> None:
    # compiling the templates took ~40 ms of every `vm up`: a later process loads them,
    # also with another state dir (a reset world): compiled templates belong to none
    import jinja2

    from provision.cloudinit import render_user_data

    monkeypatch.setenv("AIHOST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIHOST_STATE_DIR", str(tmp_path / "state-1"))
    reader = lambda ref, what: "x"  # noqa: E731
    first = render_user_data(inventory(None), "box", secret_reader=reader).text
    cached = list((tmp_path / "cache" / "jinja2").iterdir())
    assert cached and all(p.stat().st_size > 0 for p in cached)
    assert not (tmp_path / "state-1").exists()

    def no_compiling(*args, **kwargs):
        raise AssertionError("a template was compiled again")

    monkeypatch.setattr(jinja2.Environment, "compile", no_compiling)
    monkeypatch.setenv("AIHOST_STATE_DIR", str(tmp_path / "state-2"))
    assert render_user_data(inventory(None), "box", secret_reader=reader).text == first
