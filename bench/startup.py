"""Scenario 5: CLI start-up, as ratios to a bare `python -c pass`.

Each command runs twice untimed first (bytecode caches written, files in the page
cache), then the commands take turns so machine noise hits them alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import ansible_peer
from bench.context import Bench, median, ratio
from bench.procs import aihost_argv, child_env, python_argv, run, script_argv

WARMUP = 2


def commands(bench: Bench, inventory: Path, ansible_home: Path) -> dict[str, tuple[list, dict]]:
    """Label -> (argv, env) of each command timed."""
    env = child_env()
    out: dict[str, tuple[list, dict]] = {
        "python -c pass": ([*python_argv(), "-c", "pass"], env),
        "aihost --help": ([*aihost_argv(), "--help"], env),
        "aihost --version": ([*aihost_argv(), "--version"], env),
        "aihost inventory check": (
            [*aihost_argv(), "-i", str(inventory), "inventory", "check"],
            env,
        ),
    }
    if "ansible" in bench.peers:
        aenv = ansible_peer.ansible_env(ansible_home, "")
        aenv.pop("REQUESTS_CA_BUNDLE")
        out["ansible-playbook --version"] = ([*script_argv("ansible-playbook"), "--version"], aenv)
    return out


def scenario(bench: Bench) -> dict[str, Any]:
    """Median seconds of each command and its ratio to `python -c pass`."""
    with bench.sim(bench.zero) as sim:
        inventory = sim.inventory(
            sim.root / "inventory.yaml",
            {"llm-box": {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}},
        )
        todo = commands(bench, inventory, sim.root)
        for argv, env in todo.values():
            for _ in range(min(WARMUP, bench.startup_reps)):
                run(argv, env=env, cwd=sim.root).check(" ".join(argv))
        times: dict[str, list[float]] = {label: [] for label in todo}
        bench.say(f"start-up: {len(todo)} commands x {bench.startup_reps}")
        for _ in range(bench.startup_reps):
            for label, (argv, env) in todo.items():
                times[label].append(run(argv, env=env, cwd=sim.root).check(label).wall)
    base = median(times["python -c pass"])
    rows = {
        label: {
            "median": median(values),
            "ratio": ratio(median(values), base),
            "runs": [round(v, 4) for v in values],
        }
        for label, values in times.items()
    }
    return {"commands": rows, "argv": {label: argv for label, (argv, _) in todo.items()}}
