"""aihost processes without the interpreter's start-up: a fork server.

Starting `python -m provision` costs about a second of imports on a loaded 2-core machine,
more than most trials' own work. The zygote is one `python` subprocess that imports the
CLI once, then forks one child per command; each child is a separate OS process (own
pid, so the lease sees it die) that runs `provision.cli.main.run(argv)` exactly as
`python -m provision` does, with stdout and stderr in files. The harness kills children
by pid; the zygote reaps them and writes each exit code (-signal when killed) to a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SERVER = r"""
import json, os, sys, threading
import provision.cli.main, provision.cli.vm_cmd, provision.cli.gpu_cmd
import provision.vmops.fleet, provision.vmops.apply, provision.gpu.swap, provision.pve.client
import provision.delivery.snippets, provision.preflight.run
from provision.cli.main import run
rc_files = {}
lock = threading.Lock()

def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            threading.Event().wait(0.01)
            continue
        code = os.waitstatus_to_exitcode(status)
        with lock:
            path = rc_files.pop(pid, None)
        if path:
            with open(path + ".tmp", "w") as f:
                f.write(str(code))
            os.replace(path + ".tmp", path)

threading.Thread(target=reap, daemon=True).start()
for line in sys.stdin:
    job = json.loads(line)
    with lock:
        pid = os.fork()
        if pid == 0:
            out = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            err = os.open(job["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, 1); os.dup2(err, 2)
            # no shared job pipe in the child; stdin stays an open file (the CLI's
            # Environment asks it isatty), reading nothing
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            code = 1
            try:
                code = run(job["argv"])
            finally:
                sys.stdout.flush(); sys.stderr.flush()
                os._exit(code)
        rc_files[pid] = job["rc"]
    sys.stdout.write(f"{pid}\n"); sys.stdout.flush()
"""


class Child:
    """One aihost process forked by the zygote (a Popen look-alike for the harness)."""

    def __init__(self, pid: int, files: dict[str, Path]) -> None:
        self.pid, self.files = pid, files
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code once the process has ended, else None."""
        if self.returncode is None and self.files["rc"].exists():
            self.returncode = int(self.files["rc"].read_text())
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; subprocess.TimeoutExpired after timeout seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("aihost", timeout or 0)
            time.sleep(0.01)
        return int(self.returncode or 0)

    def send_signal(self, sig: int) -> None:
        """Signal the process (no error when it has ended)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait, then (stdout, stderr)."""
        self.wait(timeout)
        return (
            self.files["out"].read_text(errors="replace"),
            self.files["err"].read_text(errors="replace"),
        )


class Zygote:
    """The fork server: `spawn(argv)` starts aihost ARGV in a new process."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="aihost-zygote-"))
        self.count = 0
        self.proc: Any = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            cwd=cwd,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def spawn(self, argv: list[str]) -> Child:
        """Fork a child running `aihost ARGV`."""
        self.count += 1
        files = {k: self.dir / f"{self.count}.{k}" for k in ("out", "err", "rc")}
        self.proc.stdin.write(
            json.dumps({"argv": argv, **{k: str(v) for k, v in files.items()}}) + "\n"
        )
        self.proc.stdin.flush()
        return Child(int(self.proc.stdout.readline()), files)

    def close(self) -> None:
        """End the fork server."""
        self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
