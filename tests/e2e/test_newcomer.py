"""A newcomer's first hour: the README's commands table walked on inventories/demo.yaml,
every command in text and with `-o json`. Each ends with its documented exit code, prints
exactly one JSON document with `-o json`, no Python values (`None`, `['...']`) in text,
and every command it suggests in backticks (`aihost ...`) is one that then succeeds."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path

from aihost_testing import INVENTORIES, Result, run_aihost

DEMO = str(INVENTORIES / "demo.yaml")
HINT = re.compile(r"`(aihost [^`]+)`")
REPRS = ("None", "['")
# Text that is a document of its own, not aihost's words: the user-data embeds the
# guest's Python state script; the schema is JSON.
DOCUMENTS = {("render", "llm-box"), ("render", "small-box"), ("inventory", "schema")}


def aihost(*args: str) -> Result:
    """`aihost -i DEMO ARGS` as its own process would run it: the in-process simulator
    of an `api: sim` host ends with the command (its world stays in the state dir)."""
    from provision.sim.registry import stop_sim_servers

    try:
        return run_aihost("-i", DEMO, *args)
    finally:
        stop_sim_servers()


def _hints(result: Result) -> list[list[str]]:
    return [shlex.split(cmd)[1:] for cmd in HINT.findall(result.stdout + result.stderr)]


def _follow(result: Result, seen: set[str], depth: int = 0) -> None:
    """Run every command the result suggests, each from the world it was suggested in
    (the state directory is put back after each): each must succeed, and so must theirs."""
    state = Path(os.environ["AIHOST_STATE_DIR"])
    snapshot = state.with_name(f"{state.name}.hinted{depth}")
    shutil.rmtree(snapshot, ignore_errors=True)
    shutil.copytree(state, snapshot, symlinks=True)
    try:
        for hint in _hints(result):
            key = shlex.join(hint)
            if key in seen:
                continue
            seen.add(key)
            ran = aihost(*hint)
            assert ran.exit_code == 0, f"hint `aihost {key}` exited {ran.exit_code}: {ran.stderr}"
            if depth < 2:
                _follow(ran, seen, depth + 1)
            shutil.rmtree(state)
            shutil.copytree(snapshot, state, symlinks=True)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)


def _json(seen: set[str], args: tuple[str, ...], code: int) -> Result:
    result = aihost("-o", "json", *args)
    assert result.exit_code == code, (args, result.stderr)
    assert result.stdout.strip(), f"{args}: nothing on stdout with -o json"
    json.loads(result.stdout)  # exactly one document: trailing data is an error
    _follow(result, seen)
    return result


def _text(seen: set[str], args: tuple[str, ...], code: int) -> Result:
    result = aihost(*args)
    assert result.exit_code == code, (args, result.stderr)
    if tuple(args[:2]) not in DOCUMENTS:
        for shown in REPRS:
            assert shown not in result.stdout + result.stderr, (args, result.stdout, result.stderr)
    _follow(result, seen)
    return result


def walk(seen: set[str], *args: str, code: int = 0) -> Result:
    """One row of the walk: -o json, then text, each checked and its hints followed."""
    _json(seen, args, code)
    return _text(seen, args, code)


def test_the_readme_commands_on_the_demo(fast_demo: None) -> None:
    seen: set[str] = set()
    for row in (
        ("inventory", "check"),
        ("inventory", "show"),
        ("inventory", "schema"),
        ("models", "list"),
        ("models", "fit", "llama3.1:8b", "--gpu", "rtx4090"),
        ("render", "llm-box"),
        ("render", "small-box"),
    ):
        walk(seen, *row)
    walk(seen, "models", "fit", "llama3.1:70b", "--vram", "24", code=2)  # does not fit
    baked = walk(seen, "template", "bake", "gpu-base")  # json bakes, text finds it current
    assert baked.stdout.startswith("gpu-base: no changes"), baked.stdout

    checked = walk(seen, "host", "check")
    assert "VM readiness" in checked.stdout
    walk(seen, "vm", "plan", "llm-box")
    walk(seen, "vm", "plan", "image-box")

    up = walk(seen, "vm", "up", "--all")  # the shared RTX 4090: one holder, one note
    assert "`aihost gpu swap rtx4090 --to image-box`" in up.stdout + up.stderr
    assert "gpu swap rtx4090 --to image-box" in seen  # followed, and it worked
    for row in (
        ("vm", "list"),
        ("vm", "status", "llm-box"),
        ("vm", "status", "image-box"),
        ("vm", "status", "small-box"),
        ("gpu", "list"),
    ):
        walk(seen, *row)
    status = aihost("vm", "status", "small-box").stdout
    assert re.search(r"^address:\s+\d+\.\d+\.\d+\.\d+$", status, re.M), status
    assert re.search(r"^way_in:\s+\S", status, re.M), status

    for row in (
        ("gpu", "map", "rtx4090"),
        ("gpu", "swap", "rtx4090", "--to", "llm-box"),
        ("gpu", "release", "rtx4090"),
        ("gpu", "recover", "rtx4090"),
        ("vm", "plan", "image-box"),
        ("vm", "down", "small-box"),
    ):
        walk(seen, *row)
    walk(seen, "vm", "destroy", "small-box", code=2)  # without --yes: nothing happens
    _json(seen, ("vm", "destroy", "small-box", "--yes"), 0)
    _text(seen, ("vm", "destroy", "image-box", "--yes"), 0)
    walk(seen, "sim", "reset")
    listed = walk(seen, "vm", "list")  # a fresh world: the demo's VMs are not made yet
    assert "small-box" in listed.stdout
