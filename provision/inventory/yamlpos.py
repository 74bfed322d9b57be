"""Load YAML while remembering the line of every key, so errors can point at it.

Bounded against hostile input: nesting deeper than MAX_DEPTH (while composing and
while expanding aliases), aliases that expand to more than MAX_NODES values (the
"billion laughs"), a recursive alias, keys that are not plain strings and YAML tags an
inventory has no use for are refused with the line, before the structure is built.
"""

from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[str | int, ...]

MAX_DEPTH = 32  # an inventory nests 5 levels deep
MAX_NODES = 20_000  # values after alias expansion; a 50-VM inventory has ~2,000

# tags whose values are not strings, numbers, booleans, null, lists or mappings
_REFUSED_TAGS = {
    "tag:yaml.org,2002:binary": "!!binary",
    "tag:yaml.org,2002:set": "!!set",
    "tag:yaml.org,2002:omap": "!!omap",
    "tag:yaml.org,2002:pairs": "!!pairs",
}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


class YamlSyntaxError(Exception):
    """The text is not valid YAML; carries the 1-based line."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader whose (recursive) composer refuses nesting beyond MAX_DEPTH."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Compose one node, counting the depth on the way down."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlSyntaxError(
                    f"nesting deeper than {MAX_DEPTH} levels", mark.line + 1 if mark else None
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_with_lines(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text; return the data and a map from key path to 1-based line number.

    Duplicate keys are refused (PyYAML silently keeps the last one).
    """
    try:
        _check_shape(text)
        root = yaml.compose(text, Loader=_COMPOSER)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"not valid YAML: {_problem(exc)}", _line(exc, text)) from None
    lines: dict[Path_, int] = {}
    if root is None:
        return None, lines
    return _Builder(lines).build(root, ()), lines


# libyaml when PyYAML has it (fast, and safe to compose once _check_shape bounded the depth:
# its composer recurses in C); else the pure-Python loader that bounds depth itself.
_FAST = getattr(yaml, "CSafeLoader", None)
_COMPOSER: Any = _FAST or _BoundedLoader


def _check_shape(text: str) -> None:
    """Walk the parse events (iteratively, stopping at the first excess) and refuse
    nesting deeper than MAX_DEPTH or more than MAX_NODES values before anything is built.

    Stopping early matters: libyaml's and PyYAML's scanners slow down quadratically on
    thousands of open flow brackets, but only when asked for the events past them.
    """
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_FAST or yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlSyntaxError(f"nesting deeper than {MAX_DEPTH} levels", _at(event))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                raise YamlSyntaxError(f"more than {MAX_NODES} values", _at(event))


def _at(event: yaml.Event) -> int | None:
    mark = event.start_mark
    return int(mark.line) + 1 if mark is not None else None


def _problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character {exc.character!r} is not allowed in YAML"
    return str(getattr(exc, "problem", None) or exc).splitlines()[0]


def _line(exc: yaml.YAMLError, text: str) -> int | None:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(exc, "position", None)
    return text[:position].count("\n") + 1 if isinstance(position, int) else None


class _Builder:
    """Turns the composed node graph into Python data, within the bounds above."""

    def __init__(self, lines: dict[Path_, int]) -> None:
        self.lines = lines
        self.ctor = yaml.SafeLoader("")
        self.count = 0
        self.active: set[int] = set()

    def build(self, node: yaml.Node, path: Path_) -> Any:
        """The value of node at path (recording lines)."""
        line = node.start_mark.line + 1
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlSyntaxError(
                f"the YAML expands to more than {MAX_NODES} values (aliases)", line
            )
        if len(path) > MAX_DEPTH:
            raise YamlSyntaxError(f"nesting deeper than {MAX_DEPTH} levels (aliases)", line)
        if id(node) in self.active:
            raise YamlSyntaxError("an alias refers to a value that contains it", line)
        self.lines.setdefault(path, line)
        self._check_tag(node, line)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.build(item, (*path, index)))
            return items
        finally:
            self.active.discard(id(node))

    @staticmethod
    def _check_tag(node: yaml.Node, line: int) -> None:
        allowed: str | None = None
        if isinstance(node, yaml.MappingNode):
            allowed = _MAP
        elif isinstance(node, yaml.SequenceNode):
            allowed = _SEQ
        refused = _REFUSED_TAGS.get(node.tag)
        if refused is None and allowed is not None and node.tag != allowed:
            refused = node.tag
        if refused is not None:
            raise YamlSyntaxError(f"the YAML tag {refused} is not allowed in an inventory", line)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        explicit: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = self.build(value_node, path)
                for item in merged if isinstance(merged, list) else [merged]:
                    if not isinstance(item, dict):
                        raise YamlSyntaxError(
                            "a merge key (<<) takes a mapping or a list of mappings",
                            value_node.start_mark.line + 1,
                        )
                    for k, v in item.items():
                        if k not in explicit:
                            result[k] = v
                continue
            key = self._key(key_node)
            if key in explicit:
                raise YamlSyntaxError(f"duplicate key '{key}'", key_node.start_mark.line + 1)
            explicit.add(key)
            child = (*path, key)
            self.lines[child] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, child)
            self.lines[child] = key_node.start_mark.line + 1
        return result

    def _key(self, node: yaml.Node) -> str:
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.ScalarNode):
            raise YamlSyntaxError("a key must be a plain string, not a list or mapping", line)
        value = self._scalar(node)
        if not isinstance(value, str):
            raise YamlSyntaxError(
                f"the key {node.value!r} is read as {type(value).__name__}, not a string; "
                f"quote it: '{node.value}'",
                line,
            )
        return value

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        line = node.start_mark.line + 1
        if node.tag == _TIMESTAMP:
            return node.value  # a date-like word stays the text that was written
        try:
            return self.ctor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise YamlSyntaxError(f"not valid YAML: {problem}", line) from None


def line_for(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of the deepest known prefix of path."""
    for cut in range(len(path), -1, -1):
        found = lines.get(tuple(path[:cut]))
        if found is not None:
            return found
    return None
