"""Load YAML while remembering the line of every key, so errors can point at it."""

from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class YamlSyntaxError(Exception):
    """The text is not valid YAML; carries the 1-based line."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def load_with_lines(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text; return the data and a map from key path to 1-based line number.

    Duplicate keys are refused (PyYAML silently keeps the last one).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(f"not valid YAML: {problem}", line) from exc
    lines: dict[Path_, int] = {}
    if root is None:
        return None, lines
    constructor = yaml.SafeLoader("")
    return _build(root, (), lines, constructor), lines


def _build(node: yaml.Node, path: Path_, lines: dict[Path_, int], ctor: yaml.SafeLoader) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        explicit: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = _build(value_node, path, lines, ctor)
                for item in merged if isinstance(merged, list) else [merged]:
                    if isinstance(item, dict):
                        for k, v in item.items():
                            if k not in explicit:
                                result[k] = v
                continue
            key = ctor.construct_object(key_node, deep=True)
            if key in explicit:
                raise YamlSyntaxError(f"duplicate key '{key}'", key_node.start_mark.line + 1)
            explicit.add(key)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            result[key] = _build(value_node, child, lines, ctor)
            lines[child] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            items.append(_build(item, (*path, index), lines, ctor))
        return items
    return ctor.construct_object(node, deep=True)


def line_for(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of the deepest known prefix of path."""
    for cut in range(len(path), -1, -1):
        found = lines.get(tuple(path[:cut]))
        if found is not None:
            return found
    return None
