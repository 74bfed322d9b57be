"""Layers point one way: cli -> operations -> domain -> pve/ssh/inventory -> errors.

Parses every module's imports (no import is run) and fails when a lower layer imports a
higher one, or when a module outside cli/ imports provision.* inside a function (only
the CLI imports lazily, to keep `aihost --help` fast). docs/architecture.md draws this.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "provision"

# package (or top-level module) -> layer; a module may import its own layer and below.
LAYERS = {
    "errors": 0,
    "paths": 0,
    "pve": 1,
    "ssh": 1,
    "inventory": 1,
    "sim": 1,
    "plan": 2,
    "delivery": 2,
    "cloudinit": 2,
    "guest": 2,
    "models": 2,
    "vmops": 3,
    "gpu": 3,
    "preflight": 3,
    "cli": 4,
    "__main__": 4,
    "__init__": 4,
}
# Not ours to change yet (another change owns these files): (importer, imported).
KNOWN_UPWARD = {
    ("provision/inventory/checks.py", "models"),
    # The real-guest bridge boots QEMU with the cidata ISO aihost itself builds, on purpose:
    # the lane tests that very ISO (the simulator is a test backend, not a product layer).
    ("provision/sim/qemu_guest.py", "delivery"),
}
KNOWN_LAZY = {"provision/inventory/checks.py", "provision/inventory/model.py"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _imports(tree: ast.AST) -> list[tuple[ast.ImportFrom | ast.Import, bool, bool]]:
    """Every import of provision.*, with (inside a function, inside `if TYPE_CHECKING`)."""
    found = []

    def visit(node: ast.AST, in_function: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            func = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            typed = typing_only or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            )
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function, typing_only))
            visit(child, func, typed)

    visit(tree, False, False)
    return found


def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    names = (
        [node.module or ""]
        if isinstance(node, ast.ImportFrom)
        else [alias.name for alias in node.names]
    )
    return [n.split(".")[1] for n in names if n.startswith("provision.") and n.count(".") >= 1]


def test_every_package_has_a_layer():
    assert {_layer_of(p) for p in _modules()} <= set(LAYERS)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_higher_layer(path):
    own = LAYERS[_layer_of(path)]
    shown = f"provision/{path.relative_to(PACKAGE)}"
    upward = [
        f"line {node.lineno}: imports provision.{target} (layer {LAYERS[target]} > {own})"
        for node, _, _ in _imports(ast.parse(path.read_text(encoding="utf-8")))
        for target in _targets(node)
        if LAYERS.get(target, 0) > own and (shown, target) not in KNOWN_UPWARD
    ]
    assert upward == []


@pytest.mark.parametrize(
    "path",
    [p for p in _modules() if _layer_of(p) not in ("cli", "sim")],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_the_cli_imports_provision_lazily(path):
    shown = f"provision/{path.relative_to(PACKAGE)}"
    lazy = [
        f"line {node.lineno}: provision.{'/'.join(_targets(node))}"
        for node, in_function, typing_only in _imports(ast.parse(path.read_text("utf-8")))
        if in_function and not typing_only and _targets(node)
    ]
    assert shown in KNOWN_LAZY or lazy == []


def test_the_checker_sees_an_upward_import():
    tree = ast.parse("def f():\n    from provision.cli.main import run\n")
    ((node, in_function, _),) = _imports(tree)
    assert _targets(node) == ["cli"] and in_function


# Proxmox API paths are built in pve/ only (the simulator serves them). Known exceptions:
# preflight/privileges.py is a table of the calls' documented path templates and ACL paths
# to compare a token's rights with; it sends no request.
API_ROOTS = ("/nodes", "/cluster", "/access", "/storage", "/pools", "/version")
KNOWN_API_PATHS = {"provision/preflight/privileges.py"}


def _api_paths(tree: ast.AST) -> list[str]:
    """Every string or f-string in tree that starts like a Proxmox API path."""
    found = []
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        head = node
        if isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
        if (
            id(node) not in parts
            and isinstance(head, ast.Constant)
            and isinstance(head.value, str)
            and head.value.startswith(API_ROOTS)
        ):
            found.append(f"line {node.lineno}: {head.value}")
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in _modules() if _layer_of(p) not in ("pve", "sim")],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_pve_builds_api_paths(path):
    shown = f"provision/{path.relative_to(PACKAGE)}"
    paths = _api_paths(ast.parse(path.read_text(encoding="utf-8")))
    assert shown in KNOWN_API_PATHS or paths == []


def test_the_checker_sees_an_api_path_in_an_f_string():
    tree = ast.parse('def f(node):\n    return client.get(f"/nodes/{node}/qemu")\n')
    assert _api_paths(tree) == ["line 2: /nodes/"]
