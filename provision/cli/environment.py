"""The terminal a command runs in, as one injectable value (HTTPie's `Environment`).

`run(argv, env)` hands it to every command; nothing under `cli/` reads `sys.std*`,
`os.environ` or the clock itself. Tests build one over StringIO instead of patching globals.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TextIO


def _stdin_isatty() -> bool:
    stdin = sys.stdin
    return stdin is not None and stdin.isatty()


@dataclass
class Environment:
    """stdin, stdout, stderr, whether stdin is a terminal, the environment variables and a
    clock. The defaults are the process's own, read when the Environment is made."""

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin_isatty: bool = field(default_factory=_stdin_isatty)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], float] = time.monotonic

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Make this environment the process's for one command, then restore it.

        Click writes its own help, version and usage text to `sys.stdout`/`sys.stderr`, and
        the layers below the CLI (secrets, state directory, SSH agent) still read
        `os.environ`; this is the one place both are pointed at the Environment."""
        saved = dict(os.environ)
        changed = saved != dict(self.env)
        if changed:
            os.environ.clear()
            os.environ.update(self.env)
        try:
            with contextlib.redirect_stdout(self.stdout), contextlib.redirect_stderr(self.stderr):
                yield
        finally:
            if changed:
                os.environ.clear()
                os.environ.update(saved)
