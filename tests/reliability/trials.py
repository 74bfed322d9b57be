"""The trial kinds and the runner.

kill   one of `vm up llm-box`, `vm up --all`, `gpu swap`, `vm up image-box --take-gpu` as
       a subprocess, SIGKILLed after a random delay (before, during or after its requests)
fault  the same commands with one fault at a random request or task: HTTP 500, dropped
       connection, hang (the connection closes after a short wait, as a client timeout
       would), task error, or the node going offline after a random delay
race   8 processes of mixed `vm up`, `gpu swap` and `gpu release` on the one GPU at once

After each trial the faults are cleared, `gpu recover rtx4090` runs once, then the
command's re-run where one is expected (it must converge: exit 0), then `lab.check`.
Every trial has its own seed: `python -m tests.reliability --seed N --trials 1` repeats it.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .lab import GPU, Lab, check

UP = ("vm", "up", "llm-box", "--no-wait")
UP_ALL = ("vm", "up", "--all", "--no-wait")
SWAP = ("gpu", "swap", GPU, "--to", "image-box", "--no-verify")
TAKE = ("vm", "up", "image-box", "--take-gpu", "--no-wait")
# name: (argv, starting worlds, the re-run that must converge afterwards)
COMMANDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...] | None]] = {
    "up": (UP, ("empty", "mapped"), UP),
    "up-all": (UP_ALL, ("empty", "mapped"), UP_ALL),
    "swap": (SWAP, ("held",), None),
    "take": (TAKE, ("held",), TAKE),
}
RACERS = (
    UP,
    ("vm", "up", "image-box", "--no-wait"),
    ("vm", "up", "box-c", "--no-wait"),
    SWAP,
    ("gpu", "swap", GPU, "--to", "box-c", "--no-verify"),
    ("gpu", "swap", GPU, "--to", "llm-box", "--no-verify"),
    ("gpu", "release", GPU),
)
DOCUMENTED = {0, 2, 3, 4, 5}
TASK_TYPES = ("qmclone", "qmstart", "qmshutdown", "qmstop", "qmdestroy")
KINDS = {"kill": 0.4, "fault": 0.45, "race": 0.15}
COMMAND_TIMEOUT = 90.0


@dataclass
class Trial:
    """One trial's seed, what it did and what it broke."""

    seed: int
    kind: str
    what: str = ""
    codes: list[int] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)  # each command's stderr, for a broken trial

    def line(self) -> str:
        """One line for the log."""
        state = "OK" if not self.violations else "; ".join(self.violations)
        return f"seed {self.seed} {self.kind} {self.what} exits {self.codes}: {state}"


def run_trial(lab: Lab, seed: int, kind: str | None = None) -> Trial:
    """One trial of the given (else a random) kind, then recover, re-run and check."""
    rng = random.Random(seed)
    kind = kind or rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    trial = Trial(seed, kind)
    rerun = {"kill": _kill, "fault": _fault, "race": _race}[kind](lab, rng, trial)
    lab.control("DELETE", "faults")
    code, err = _in_process(lab, "gpu", "recover", GPU)
    trial.logs.append(f"$ aihost gpu recover {GPU}  (exit {code})\n{err}")
    if code != 0:
        trial.violations.append(f"gpu recover exited {code}: {_last(err)}")
    if rerun is not None:
        code, err = _in_process(lab, *rerun)
        trial.codes.append(code)
        if code != 0:
            trial.violations.append(f"re-run `{' '.join(rerun)}` exited {code}: {_last(err)}")
    trial.violations += check(lab.save())
    return trial


def _kill(lab: Lab, rng: random.Random, trial: Trial) -> tuple[str, ...] | None:
    name = rng.choice(list(COMMANDS))
    argv, worlds, rerun = COMMANDS[name]
    lab.restore(rng.choice(worlds), rng)
    delay = round(rng.uniform(0.02, 1.5), 3)
    trial.what = f"{name} killed at {delay} s"
    proc = lab.spawn(*argv)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=COMMAND_TIMEOUT)
    trial.codes.append(proc.returncode)
    return rerun


def _fault(lab: Lab, rng: random.Random, trial: Trial) -> tuple[str, ...] | None:
    name = rng.choice(list(COMMANDS))
    argv, worlds, rerun = COMMANDS[name]
    lab.restore(rng.choice(worlds), rng)
    fault, offline_after = _random_fault(rng)
    trial.what = f"{name} with {fault}" + (f" after {offline_after} s" if offline_after else "")
    if offline_after is None:
        lab.control("POST", "faults", fault)
    proc = lab.spawn(*argv)
    if offline_after is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=offline_after)
        lab.control("POST", "faults", fault)
    _, err = _finish(proc)
    trial.codes.append(proc.returncode)
    if proc.returncode not in DOCUMENTED:
        trial.violations.append(f"exit {proc.returncode}: {_last(err)}")
    return rerun


def _random_fault(rng: random.Random) -> tuple[dict[str, Any], float | None]:
    kind = rng.choice(("http500", "drop", "hang", "task_error", "node_offline"))
    if kind == "node_offline":
        return {"kind": kind, "node": "pve1"}, round(rng.uniform(0.02, 1.2), 3)
    if kind == "task_error":
        return {"kind": kind, "task": rng.choice(TASK_TYPES)}, None
    method = rng.choice((None, None, "POST", "PUT", "DELETE"))
    fault: dict[str, Any] = {"kind": kind, "nth": rng.randint(1, 60 if method is None else 6)}
    if method:
        fault["method"] = method
    if kind == "hang":
        fault["seconds"] = 0.5
    return fault, None


def _race(lab: Lab, rng: random.Random, trial: Trial) -> None:
    lab.restore(rng.choice(("held", "mapped")), rng)
    chosen = [rng.choice(RACERS) for _ in range(8)]
    trial.what = "race of " + ", ".join(
        " ".join(argv[:3]) + ("" if argv[0] == "vm" else " " + argv[-2]) for argv in chosen
    )
    procs = [lab.spawn(*argv) for argv in chosen]
    for argv, proc in zip(chosen, procs, strict=True):
        _, err = _finish(proc)
        trial.codes.append(proc.returncode)
        trial.logs.append(f"$ aihost {' '.join(argv)}  (exit {proc.returncode})\n{err}")
        if proc.returncode not in DOCUMENTED:
            trial.violations.append(f"exit {proc.returncode}: {_last(err)}")
    return None


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return out, err + f"\n(did not end within {COMMAND_TIMEOUT} s)"


def _in_process(lab: Lab, *args: str) -> tuple[int, str]:
    """aihost ARGS run to its end in a new process; (exit code, stderr)."""
    proc = lab.spawn(*args)
    _, err = _finish(proc)
    return int(proc.returncode), err


def _last(text: str) -> str:
    """The error line, and each VM's own failure line of a `vm up --all`."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    each = [line[:300] for line in lines[:-1] if ": failed: " in line]
    return " | ".join(each + [lines[-1][:300]]) if lines else ""


@dataclass
class Summary:
    """Counts per kind and the trials that broke something."""

    trials: Counter[str] = field(default_factory=Counter)
    broken: list[Trial] = field(default_factory=list)

    def add(self, trial: Trial) -> None:
        """Count a trial."""
        self.trials[trial.kind] += 1
        if trial.violations:
            self.broken.append(trial)

    def text(self) -> str:
        """Counts per kind, then each broken trial (its seed repeats it)."""
        total = sum(self.trials.values())
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.trials.items()))
        bad = Counter(t.kind for t in self.broken)
        lines = [
            f"{total} trials ({kinds}); {len(self.broken)} with violations "
            f"({', '.join(f'{k} {n}' for k, n in sorted(bad.items())) or 'none'})"
        ]
        lines += [t.line() for t in self.broken]
        return "\n".join(lines)


def run_many(
    labs: list[Lab],
    first_seed: int,
    trials: int,
    budget: float | None = None,
    log: Any = None,
    kind: str | None = None,
) -> Summary:
    """Trials with seeds first_seed, first_seed+1, ... until trials or the budget (s),
    one thread per lab (a trial mostly waits for tasks and processes); kind runs only
    trials of that kind."""
    summary = Summary()
    started = time.monotonic()
    seeds = itertools.count(first_seed)
    lock = threading.Lock()

    def work(lab: Lab) -> None:
        while True:
            with lock:
                seed = next(seeds)
                if seed >= first_seed + trials or (
                    budget is not None and time.monotonic() - started > budget
                ):
                    return
            trial = run_trial(lab, seed, kind)
            with lock:
                summary.add(trial)
                if log is not None:
                    log(trial.line())

    threads = [threading.Thread(target=work, args=(lab,)) for lab in labs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summary
