"""`python -m bench`: run every scenario for aihost and its peers, write the results."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from bench import ansible_peer, fleet, fresh, reference, startup, swap, ttft
from bench.context import LLM_VM, Bench

HERE = Path(__file__).resolve().parent
SCENARIOS = ("fresh", "fleet", "swap", "startup", "ttft")

NOTES = [
    "Every run starts from a reset simulator (a fresh state directory); the simulator runs "
    "in the benchmark's process, each tool in its own process over HTTPS (and SFTP for "
    "aihost's snippets), so start-up costs count.",
    "Requests are counted from the simulator's request log; writes are requests other than "
    "GET, guest-agent calls excluded (they are counted apart).",
    "Overhead = wall time - the simulator's task time on the critical path (the durations "
    "of the tasks the tool waited for). Scaled durations are the realistic ones (clone 5 s, "
    "start 3 s, shutdown 4 s) times the scale; other tasks and the guest boot are instant.",
    "The peers do what aihost's own plan does after a clone (the same config keys, the "
    "same resize), learned from `aihost vm plan -o json` on a fresh simulator; aihost's "
    "cloud-init snippets are put on the storage for them beforehand (untimed: a peer "
    "would need its own upload step). Both tools' final VM configs are compared.",
    "aihost's `vm up` also proves the guest works (agent, nvidia-smi, runtime); "
    "`--no-wait` is the same flow without those checks, closest to what the peers do.",
    "Ansible: community.proxmox.proxmox_kvm with an API token, validate_certs true and the "
    "simulator's certificate as REQUESTS_CA_BUNDLE; ANSIBLE_HOME and its temp folders in "
    "a temporary folder; the interpreter is the benchmark's Python.",
    "proxmoxer: a minimal hand-written script (bench/px_script.py) polling tasks every 0.1 s.",
    "PYTHONDONTWRITEBYTECODE is removed from the tools' environment and every start-up "
    "command runs twice before timing, so bytecode caches exist as on a user's machine.",
]


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scale",
        type=float,
        default=0.2,
        help="factor on the realistic task durations (default 0.2)",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions per measurement")
    parser.add_argument(
        "--fresh-reps",
        type=int,
        default=7,
        help="repetitions of the fresh vm up at scaled durations (default 7)",
    )
    parser.add_argument("--startup-reps", type=int, default=10)
    parser.add_argument("--fleet", default="1,5,20", help="fleet sizes (default 1,5,20)")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"scenarios to run (default all: {','.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--peers", default="ansible,proxmoxer", help="peers to compare with (ansible, proxmoxer)"
    )
    parser.add_argument(
        "--validate", action="store_true", help="check every request against Proxmox's API schema"
    )
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the results")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return the results (also written to --out)."""
    args = parse(argv)
    peers = tuple(p for p in args.peers.split(",") if p)
    notes = list(NOTES)
    if "ansible" in peers and not ansible_peer.available():
        peers = tuple(p for p in peers if p != "ansible")
        notes.append("Ansible is not installed (pip install '.[bench]'): no Ansible rows.")
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="aihost-bench-") as tmp:
        bench = Bench(
            scale=args.scale,
            reps=args.reps,
            workdir=Path(tmp),
            fresh_reps=args.fresh_reps,
            validate=args.validate,
            peers=peers,
            startup_reps=args.startup_reps,
            fleet_sizes=tuple(int(s) for s in args.fleet.split(",") if s),
            quiet=args.quiet,
            notes=notes,
        )
        scenarios: dict[str, Any] = {}
        only = [s for s in args.only.split(",") if s]
        ref = None
        for name in only:
            try:
                if name == "fresh":
                    ref = ref or reference.learn(bench, fresh.NAME, LLM_VM)
                    scenarios[name] = fresh.scenario(bench, ref)
                elif name == "fleet":
                    scenarios[name] = fleet.scenario(bench)
                elif name == "swap":
                    scenarios[name] = swap.scenario(bench)
                elif name == "startup":
                    scenarios[name] = startup.scenario(bench)
                elif name == "ttft":
                    # its own scales (realistic first boots last minutes); --scale 0 (a
                    # smoke run) shrinks them too
                    scenarios[name] = (
                        ttft.scenario(bench) if bench.scale else ttft.scenario(bench, 0.004, 0.004)
                    )
                else:
                    raise ValueError(f"unknown scenario {name}")
            except Exception as exc:  # a scenario that cannot run is reported as failed
                bench.say(f"{name} failed: {exc}")
                scenarios[name] = {"error": f"{exc}\n{traceback.format_exc()}"}
    results = {"meta": meta(args, bench, argv), "scenarios": scenarios}
    results["meta"]["load"] = f"{load_before} before, {_load()} after (1/5/15-minute averages)"
    from bench.report import write

    md, js = write(results, args.out)
    bench.say(f"wrote {md} and {js}")
    return results


def meta(args: argparse.Namespace, bench: Bench, argv: list[str] | None) -> dict[str, Any]:
    """Date, machine, versions, settings and the command that reproduces the run."""
    shown = sys.argv[1:] if argv is None else argv
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(),
        "scale": bench.scale,
        "durations": {k: round(v, 3) for k, v in bench.durations.items() if v},
        "reps": bench.reps,
        "fresh_reps": bench.fresh_reps,
        "startup_reps": bench.startup_reps,
        "peers": list(bench.peers),
        "command": "python -m bench" + "".join(f" {shlex.quote(a)}" for a in shown),
        "notes": bench.notes,
    }


def machine() -> str:
    """CPU model, core count, OS and Python."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def versions() -> str:
    """Versions of the tools compared."""
    from importlib import metadata

    found = []
    for dist in ("aihost", "ansible", "ansible-core", "proxmoxer", "requests"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    try:
        import json

        import ansible_collections.community.proxmox as coll

        manifest = Path(coll.__path__[0]) / "MANIFEST.json"
        found.append(
            "community.proxmox " + json.loads(manifest.read_text())["collection_info"]["version"]
        )
    except (ImportError, OSError, KeyError, ValueError):
        pass
    return ", ".join(found)


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m bench`."""
    run(argv)
