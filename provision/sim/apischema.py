"""Validate Proxmox VE API requests against Proxmox's own API schema (apidoc.json).

The schema is Proxmox's data in ../shared/pve (never copied into the project): a tree of
path templates (`/nodes/{node}/qemu/{vmid}/config`) whose `info` maps HTTP methods to
parameter schemas. `ApiSchema.validate` answers what a real node would refuse with HTTP
400 "Parameter verification failed." (or 501 for an unknown path or method): unknown
parameter names (indexed ones such as `hostpci0` map to `hostpci[n]` within the range of
formats.json), missing required ones, and every value's type, enum, pattern, limits and
format (see provision.sim.apivalues). The simulator uses it in tests to refuse invalid
requests; tests use it to check every request aihost sends.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from provision.sim.apivalues import Errors, ValueChecker

SCHEMA_FILES = ("apidoc.json", "apidoc-8.4.json")
_INDEXED = re.compile(r"([A-Za-z_-]+?)(0|[1-9][0-9]*)")
_DESCRIBED_RANGE = re.compile(r"n is (\d+) to (\d+)")
# Path parameters whose value may contain '/', taking the rest of the path.
_GREEDY_PARAMS = {"volume"}


def default_shared_dir() -> Path:
    """Where Proxmox's facts live: $AIHOST_SHARED_DIR, else <repo root>/../shared."""
    override = os.environ.get("AIHOST_SHARED_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared"


@dataclass
class _Node:
    """One level of the path tree: literal children, parameter children, methods."""

    literal: dict[str, _Node] = field(default_factory=dict)
    params: dict[str, _Node] = field(default_factory=dict)
    template: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Route:
    """A request path resolved to its template and path parameters."""

    template: str
    path_params: dict[str, str]
    info: dict[str, Any]


class ApiSchema:
    """One Proxmox VE version's API schema, ready to validate requests."""

    def __init__(
        self, tree: list[dict[str, Any]], formats: dict[str, Any] | None = None, name: str = ""
    ) -> None:
        self.name = name
        self._root = _Node()
        self._values = ValueChecker(formats)
        self._qemu_ranges: dict[str, tuple[int, int]] = {
            k: (int(v[0]), int(v[1]))
            for k, v in (formats or {}).get("index-ranges-qemu", {}).items()
            if not k.startswith("_")
        }
        self._format_ranges = {
            name: tuple(fmt["_index_range"])
            for name, fmt in (formats or {}).items()
            if isinstance(fmt, dict) and "_index_range" in fmt
        }
        stack = list(tree)
        while stack:
            entry = stack.pop()
            self._insert(entry["path"], entry.get("info") or {})
            stack.extend(entry.get("children") or [])

    @classmethod
    def load(cls, path: Path) -> ApiSchema:
        """Read apidoc.json (or apidoc-8.4.json); formats.json next to it when present."""
        tree = json.loads(Path(path).read_text(encoding="utf-8"))
        formats_path = Path(path).with_name("formats.json")
        formats = (
            json.loads(formats_path.read_text(encoding="utf-8")) if formats_path.is_file() else None
        )
        return cls(tree, formats, name=Path(path).name)

    def _insert(self, template: str, info: dict[str, Any]) -> None:
        node = self._root
        for seg in _segments(template):
            if seg.startswith("{") and seg.endswith("}"):
                node = node.params.setdefault(seg[1:-1], _Node())
            else:
                node = node.literal.setdefault(seg, _Node())
        node.template = template
        node.info = info

    def route(self, path: str) -> Route | None:
        """The template a request path matches (literal segments win), or None."""
        path = path.split("?", 1)[0].removeprefix("/api2/json")
        segs = [unquote(s) for s in path.split("/") if s]
        found = _match(self._root, segs, 0, {})
        if found is None or not found[0].template:
            return None
        node, bound = found
        return Route(node.template, bound, node.info)

    def permissions(self, method: str, path: str) -> dict[str, Any] | None:
        """The `permissions` entry of a method at a request path (None if unknown)."""
        route = self.route(path)
        if route is None:
            return None
        method_info = route.info.get(method.upper())
        return method_info.get("permissions") if method_info else None

    def check(self, method: str, path: str, params: dict[str, Any]) -> Errors:
        """Violations as Proxmox reports them: {parameter: message}.

        An unknown path or method is one entry under the empty key, with Proxmox's text.
        """
        method = method.upper()
        route = self.route(path)
        method_info = route.info.get(method) if route else None
        if route is None or method_info is None:
            return {"": f"Method '{method} {path}' not implemented"}
        spec = method_info.get("parameters") or {}
        props: dict[str, Any] = spec.get("properties") or {}
        values: dict[str, Any] = {}
        errors: Errors = {}
        for key, value in params.items():
            if key in route.path_params and str(value) != route.path_params[key]:
                errors[key] = (
                    f"value '{value}' conflicts with the path ('{route.path_params[key]}')"
                )
            values[key] = value
        values.update(route.path_params)
        known: dict[str, Any] = {}
        for key in values:
            schema = self._property(route.template, props, key)
            if isinstance(schema, str):
                errors[key] = schema
            elif schema is not None:
                known[key] = schema
            elif not spec.get("additionalProperties"):
                errors[key] = (
                    "property is not defined in schema and the schema does not "
                    "allow additional properties"
                )
        for key, schema in props.items():
            if "[n]" not in key and key not in values and not schema.get("optional"):
                errors[key] = "property is missing and it is not optional"
        errors.update(self._values.check_object("", known, {k: values[k] for k in known}))
        return dict(sorted(errors.items()))

    def validate(self, method: str, path: str, params: dict[str, Any]) -> list[str]:
        """Human-readable violations of one request ([] when a real node would accept it)."""
        return [
            f"{key}: {msg}" if key else msg for key, msg in self.check(method, path, params).items()
        ]

    def _property(
        self, template: str, props: dict[str, Any], key: str
    ) -> dict[str, Any] | str | None:
        """The schema of a parameter name (`hostpci0` -> `hostpci[n]`); a str is an error."""
        if key in props:
            return dict(props[key])
        indexed = _INDEXED.fullmatch(key)
        if indexed is None or f"{indexed.group(1)}[n]" not in props:
            return None
        base, index = indexed.group(1), int(indexed.group(2))
        schema = dict(props[f"{base}[n]"])
        schema["optional"] = 1
        bounds = self._index_range(template, base, schema)
        if bounds and not bounds[0] <= index <= bounds[1]:  # Proxmox expands name0..nameN
            return (
                "property is not defined in schema and the schema does not allow additional "
                "properties"
            )
        return schema

    def _index_range(
        self, template: str, base: str, schema: dict[str, Any]
    ) -> tuple[int, ...] | None:
        if "_index_range" in schema:  # a range the declaration carries (provision.sim)
            return tuple(schema["_index_range"])
        if template.startswith("/nodes/{node}/qemu") and base in self._qemu_ranges:
            return self._qemu_ranges[base]
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in self._format_ranges:
            return self._format_ranges[fmt]
        described = _DESCRIBED_RANGE.search(schema.get("description", ""))
        return (int(described.group(1)), int(described.group(2))) if described else None


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _match(
    node: _Node, segs: list[str], i: int, bound: dict[str, str]
) -> tuple[_Node, dict[str, str]] | None:
    """Depth-first match of segs[i:] below node: literal children first, then parameters."""
    if i == len(segs):
        return node, bound
    child = node.literal.get(segs[i])
    if child is not None:
        found = _match(child, segs, i + 1, bound)
        if found is not None and found[0].template:
            return found
    for name, child in node.params.items():
        if name in _GREEDY_PARAMS and not child.literal and not child.params:
            return child, {**bound, name: "/".join(segs[i:])}
        found = _match(child, segs, i + 1, {**bound, name: segs[i]})
        if found is not None and found[0].template:
            return found
    return None


def load_schemas_for_tests(shared_dir: Path) -> list[ApiSchema]:
    """The PVE 9.1 and 8.4 schemas under shared_dir/pve, those present ([] if none)."""
    return [
        ApiSchema.load(shared_dir / "pve" / name)
        for name in SCHEMA_FILES
        if (shared_dir / "pve" / name).is_file()
    ]
