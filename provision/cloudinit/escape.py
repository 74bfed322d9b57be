"""Escaping for the contexts an inventory value can reach: YAML, POSIX sh, systemd units."""

from __future__ import annotations

import json
import re
import shlex
import unicodedata

from provision.errors import InputError

# Characters PyYAML refuses or folds inside a double-quoted scalar; json.dumps leaves them raw.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
_LINE_BREAKS = {"\u0085", "\u2028", "\u2029"}


def yaml_quote(value: object) -> str:
    """value as a YAML scalar: strings double-quoted (JSON string syntax, which YAML reads),
    booleans and numbers in their JSON form so YAML reads them back typed."""
    if isinstance(value, bool | int | float) and not isinstance(value, str):
        return json.dumps(value)
    text = json.dumps(str(value), ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def sh_quote(value: object) -> str:
    """value as one POSIX shell word (shlex.quote)."""
    return shlex.quote(str(value))


def systemd_quote(value: object) -> str:
    """value as one double-quoted word of a systemd Exec*= line ($ and % doubled)."""
    text = str(value)
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("$", "$$").replace("%", "%%")
    return f'"{text}"'


def env_file_quote(value: object) -> str:
    """value as a double-quoted value of a systemd EnvironmentFile= line."""
    text = str(value)
    for char in ("\\", '"', "`", "$"):
        text = text.replace(char, "\\" + char)
    return f'"{text}"'


def one_line(value: str, what: str) -> str:
    """value unchanged, or InputError when it holds a control character or line break.

    Values that end up as one line of a file (a model per line, an authorized_keys line,
    an environment file) cannot carry a line break without changing meaning.
    """
    for char in value:
        if unicodedata.category(char) == "Cc" or char in _LINE_BREAKS:
            raise InputError(
                f"{what} contains a control character or line break ({ascii(char)})",
                hint="write it on one line without control characters",
            )
    return value
