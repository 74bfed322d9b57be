"""docs/sim-conformance.md stays complete and true: one table, a row for every route the
simulator serves (each ROUTES list in provision/sim/routes_*.py, plus the login), no row
for a route it does not serve, a Proxmox source and at least one test on every row, and
every test the document names exists (tests/x.py::name resolves to a def in that file)."""

from __future__ import annotations

import ast
import functools
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "sim-conformance.md"
QEMU = "/nodes/{node}/qemu/{vmid}"  # what `…` stands for in the first column
# Served before routing, by provision/sim/app.py (SimApp._serve) with provision/sim/auth.py.
LOGIN = ("POST", "/access/ticket")
REPOS = (
    "qemu-server",
    "pve-manager",
    "pve-common",
    "pve-guest-common",
    "pve-access-control",
    "pve-storage",
    "pve-http-server",
    "pve-cluster",
)
ROUTE_CELL = re.compile(r"`(GET|POST|PUT|DELETE) ([^`\s]+)`")
TEST_ID = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def served_routes() -> set[tuple[str, str]]:
    """(METHOD, template) of every ROUTES entry in provision/sim/routes_*.py, and the login."""
    routes = {LOGIN}
    for path in sorted((ROOT / "provision" / "sim").glob("routes_*.py")):
        module = importlib.import_module(f"provision.sim.{path.stem}")
        routes |= {(method, template) for method, template, _handler in module.ROUTES}
    return routes


def table_rows(text: str) -> list[list[str]]:
    """The cells of the document's one table (header and separator left out)."""
    lines = text.splitlines()
    tables = [
        i
        for i, line in enumerate(lines)
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|"))
    ]
    assert len(tables) == 1, f"expected one table, found {len(tables)}"
    start = tables[0]
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    rows = []
    for line in lines[start + 2 : end]:
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        rows.append(cells)
    return rows


def row_route(first_cell: str) -> tuple[str, str] | None:
    """The route a row is about, when its first cell is exactly one `METHOD /path`."""
    match = ROUTE_CELL.fullmatch(first_cell)
    if match is None:
        return None
    method, path = match.groups()
    return method, path.replace("…", QEMU)


@functools.cache
def defined_names(test_file: str) -> frozenset[str]:
    """Every function and method name defined in a test file."""
    tree = ast.parse((ROOT / test_file).read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    )


def missing_tests(text: str) -> list[str]:
    """The test ids in text that name no file or no def in it."""
    missing = []
    for test_file, name in TEST_ID.findall(text):
        if not (ROOT / test_file).is_file() or name not in defined_names(test_file):
            missing.append(f"{test_file}::{name}")
    return missing


def test_every_served_route_has_a_row_and_every_route_row_is_served() -> None:
    documented = [row_route(cells[0]) for cells in table_rows(DOC.read_text(encoding="utf-8"))]
    rows = {route for route in documented if route}
    served = served_routes()
    assert sorted(served - rows) == [], "served routes without a row in docs/sim-conformance.md"
    assert sorted(rows - served) == [], "rows for routes the simulator does not serve"
    doubled = sorted({r for r in documented if r and documented.count(r) > 1})
    assert doubled == [], "routes with more than one row"


def test_every_row_names_a_proxmox_source_and_a_test_that_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    for cells in table_rows(text):
        assert len(cells) == 4, cells[0]
        assert cells[2].startswith(tuple(f"{repo}: " for repo in REPOS)), cells[0]
        assert TEST_ID.search(cells[3]), f"no test pins: {cells[0]}"
    assert missing_tests(text) == []


def test_the_checks_catch_a_missing_route_a_stale_row_and_a_missing_test() -> None:
    """The parsing above on a small document: the `…` abbreviation, a test id that names
    no def, a second table."""
    assert row_route("`PUT …/config`") == ("PUT", f"{QEMU}/config")
    assert row_route("`PUT …/config`, `POST …/config`") is None
    assert row_route("locked VM") is None
    text = (
        "| a | b | c | d |\n|---|---|---|---|\n"
        "| `GET /version` | v | pve-manager: PVE/API2.pm, `version` | "
        "tests/unit/test_conformance_doc.py::test_no_such_test, "
        "tests/unit/test_conformance_doc.py::missing_tests |\n"
    )
    assert table_rows(text) == [
        [
            "`GET /version`",
            "v",
            "pve-manager: PVE/API2.pm, `version`",
            "tests/unit/test_conformance_doc.py::test_no_such_test, "
            "tests/unit/test_conformance_doc.py::missing_tests",
        ]
    ]
    assert missing_tests(text) == ["tests/unit/test_conformance_doc.py::test_no_such_test"]
    assert missing_tests("tests/unit/no_file.py::x") == ["tests/unit/no_file.py::x"]
    with pytest.raises(AssertionError, match="one table"):
        table_rows(text + "\ntext\n\n" + text)
    assert LOGIN in served_routes() and ("GET", "/nodes/{node}/tasks") in served_routes()
