"""Inventory loading is bounded: file type, size, encoding, YAML depth, aliases, keys, tags.

Each case is exit 2 with one line naming file:line, and fails fast (the budget is
checked while building, before anything is expanded past it).
"""

from __future__ import annotations

import os
import tracemalloc

import pytest
from aihost_testing import INVENTORIES, run_aihost

from provision.errors import InventoryError
from provision.inventory import load_inventory
from provision.inventory.reading import MAX_INVENTORY_BYTES
from provision.inventory.yamlpos import MAX_DEPTH, MAX_NODES

DEMO = (INVENTORIES / "demo.yaml").read_text()


def _laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


CASES: list[tuple[str, bytes, int, str]] = [
    ("laughs7", _laughs(7).encode(), 1, f"expands to more than {MAX_NODES} values"),
    ("laughs9", _laughs(9).encode(), 1, f"expands to more than {MAX_NODES} values"),
    ("recursive_alias", b"version: 1\nhosts: &a\n  x: *a\n", 2, "refers to a value that contains"),
    ("recursive_list", b"version: 1\nx: &a [1, *a]\n", 2, "refers to a value that contains"),
    ("deep_flow", b"hosts: " + b"[" * 5000 + b"]" * 5000, 1, f"deeper than {MAX_DEPTH} levels"),
    ("deep_map", b"hosts: " + b"{a: " * 3000 + b"1" + b"}" * 3000, 1, "deeper than"),
    ("deep_block", "".join("  " * i + "k:\n" for i in range(200)).encode(), 33, "deeper than"),
    (
        "alias_chain",
        "\n".join(["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 300)]).encode(),
        1,
        "deeper than",
    ),
    ("list_key", b"version: 1\nhosts:\n  ? [a, b]\n  : 1\n", 3, "a key must be a plain string"),
    ("map_key", b"version: 1\nhosts:\n  ? {a: 1}\n  : 1\n", 3, "a key must be a plain string"),
    ("int_key", b"version: 1\nhosts:\n  1: {api: sim}\n", 3, "quote it: '1'"),
    ("bool_key", b"version: 1\nhosts:\n  yes: {api: sim}\n", 3, "read as bool"),
    ("null_key", b"version: 1\nhosts:\n  ~: {api: sim}\n", 3, "read as NoneType"),
    ("not_utf8", b"version: 1\nhosts:\n  p\xff1: {api: sim}\n", 3, "not UTF-8 text"),
    ("latin1", "version: 1\n# caf\u00e9\n".encode("latin-1"), 2, "not UTF-8 text"),
    ("utf16", "version: 1\n".encode("utf-16"), 1, "not UTF-8 text"),
    ("nul_byte", b"version: 1\nhosts: {}\x00\n", 2, "is not allowed in YAML"),
    ("binary_tag", b"version: 1\nhosts: !!binary aGVsbG8=\n", 2, "tag !!binary"),
    ("set_tag", b"version: 1\nhosts: !!set {a, b}\n", 2, "tag !!set"),
    ("omap_tag", b"version: 1\nhosts: !!omap [a: 1]\n", 2, "tag !!omap"),
    ("python_tag", b"version: 1\nhosts: !!python/object:os.system {}\n", 2, "python/object"),
    ("custom_tag", b"version: 1\nhosts: !vault {}\n", 2, "!vault"),
    ("bad_int_tag", b"version: 1\nhosts: !!int abc\n", 2, "not valid YAML"),
    ("merge_scalar", b"version: 1\nhosts:\n  <<: 5\n", 3, "merge key"),
    ("two_documents", b"version: 1\n---\nversion: 1\n", 2, "not valid YAML"),
]


@pytest.mark.parametrize(("name", "data", "line", "message"), CASES, ids=[c[0] for c in CASES])
def test_hostile_yaml_is_one_line_with_file_and_line(tmp_path, name, data, line, message):
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(InventoryError) as caught:
            load_inventory(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.line == line, str(caught.value)
    assert message in caught.value.message
    assert peak < 20 * 1024 * 1024
    result = run_aihost("-i", str(path), "inventory", "check")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"aihost: error: {path}:{line}: ")


def test_a_fifo_is_refused_without_reading(tmp_path):
    fifo = tmp_path / "inv.fifo"
    os.mkfifo(fifo)
    result = run_aihost("-i", str(fifo), "inventory", "check")  # no writer: a read would hang
    assert result.exit_code == 2
    assert result.stderr == (
        f"aihost: error: {fifo}: the inventory is a FIFO (named pipe), not a regular file; "
        "nothing was read; name a regular YAML file\n"
    )


@pytest.mark.parametrize(
    ("path", "kind"), [("/dev/zero", "a character device"), ("/dev/null", "a character device")]
)
def test_a_device_is_refused_without_reading(path, kind):
    result = run_aihost("-i", path, "inventory", "check")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"aihost: error: {path}: the inventory is {kind}, ")


def test_a_directory_is_refused(tmp_path):
    result = run_aihost("-i", str(tmp_path), "inventory", "check")
    assert result.exit_code == 2
    assert "the inventory is a directory, not a regular file" in result.stderr


def test_an_unreadable_file_is_refused(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text(DEMO)
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("running as root: permissions do not apply")
    result = run_aihost("-i", str(path), "inventory", "check")
    assert result.exit_code == 2
    assert "cannot read inventory: Permission denied" in result.stderr


def test_an_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(DEMO + "#" + "x" * MAX_INVENTORY_BYTES + "\n")
    with pytest.raises(InventoryError, match=f"larger than {MAX_INVENTORY_BYTES // 1024} KiB"):
        load_inventory(path)


def test_a_utf8_bom_and_the_examples_still_load(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + DEMO.encode())
    assert "llm-box" in load_inventory(path).vms
    for example in INVENTORIES.glob("*.yaml"):
        load_inventory(example)


def test_anchors_and_merge_keys_within_bounds_still_work(tmp_path):
    text = DEMO.replace("  llm-box:\n", "  llm-box: &llm\n", 1) + "  copy-box:\n    <<: *llm\n"
    path = tmp_path / "anchors.yaml"
    path.write_text(text)
    inv = load_inventory(path)
    assert inv.vms["copy-box"].models == inv.vms["llm-box"].models == ["llama3.1:8b"]
