"""Run the tools under test as separate processes, as a user would, and time them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RUN_TIMEOUT = 600.0


@dataclass
class Proc:
    """One finished process: its command, exit code, output and timing (time.time())."""

    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    started: float
    ended: float

    @property
    def wall(self) -> float:
        """Seconds from launch to exit."""
        return self.ended - self.started

    def check(self, what: str) -> Proc:
        """Raise ToolFailed when the process did not exit 0."""
        if self.exit_code != 0:
            raise ToolFailed(what, self)
        return self


class ToolFailed(RuntimeError):
    """A tool under test failed; the message carries the command and its output's tail."""

    def __init__(self, what: str, proc: Proc) -> None:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
        super().__init__(f"{what} failed (exit {proc.exit_code}): {' '.join(proc.argv)}\n{tail}")
        self.proc = proc


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a tool: the user's, with bytecode caching back on.

    PYTHONDONTWRITEBYTECODE=1 (set in some sandboxes) makes every start-up recompile and
    would make the Python tools look slower than on a user's machine.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("AIHOST_INVENTORY", None)
    env.update(extra or {})
    return env


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = RUN_TIMEOUT,
) -> Proc:
    """Run argv to completion and time it from launch to exit."""
    started = time.time()
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    ended = time.time()
    return Proc(argv, done.returncode, done.stdout, done.stderr, started, ended)


def script_argv(name: str, fallback: list[str] | None = None) -> list[str]:
    """A console script of this interpreter's environment (not a shell shim in front of it)."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    if found:
        return [found]
    if fallback is None:
        raise FileNotFoundError(f"{name} is not installed in this environment")
    return fallback


def aihost_argv() -> list[str]:
    """How aihost is started: its console script, else `python -m provision`."""
    return script_argv("aihost", [sys.executable, "-m", "provision"])


def python_argv() -> list[str]:
    """The interpreter the benchmark runs under (the same one aihost and the peers use)."""
    return [sys.executable]
