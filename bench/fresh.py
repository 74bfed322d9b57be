"""Scenarios 1, 2 and 6: a fresh GPU VM with each tool, the converged re-run, task polling.

Each run starts from a reset simulator. aihost runs `vm up` (with and without the guest
checks); Ansible runs a playbook (clone, update with hostpci0, resize, start); the
proxmoxer script does the same calls by hand. Before numbers are kept, the VM each tool
left is compared with the one aihost made in the reference run.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bench import ansible_peer, reqlog
from bench.context import LLM_VM, PX_SCRIPT, Bench, medians
from bench.procs import Proc, child_env, python_argv, run
from bench.reference import Reference, write_json
from bench.sameconfig import differences
from bench.simctl import TEMPLATE, BenchSim

NAME = "llm-box"
KEYS = (
    "wall",
    "requests",
    "reads",
    "writes",
    "task_polls",
    "agent_calls",
    "task_time",
    "overhead",
    "overhead_ratio",
)


def tools(bench: Bench) -> list[str]:
    """The tools of scenario 1, aihost first."""
    return ["aihost", "aihost --no-wait", *bench.peers]


def run_tool(bench: Bench, tool: str, sim: BenchSim, ref: Reference) -> Proc:
    """Bring the VM up with one tool against sim; return the finished process."""
    root = sim.root
    if tool.startswith("aihost"):
        inventory = sim.inventory(root / "inventory.yaml", {NAME: LLM_VM})
        extra = ["--no-wait"] if "--no-wait" in tool else []
        return bench.aihost(sim, "-i", str(inventory), "vm", "up", NAME, *extra)
    ref.stage_snippets(sim)
    if tool == "ansible":
        playbook = root / "vm-up.yml"
        if not playbook.exists():
            ansible_peer.write_playbook(
                playbook,
                ansible_peer.vm_up_playbook(
                    sim.peer_auth(),
                    template=TEMPLATE,
                    vmid=ref.vmid,
                    name=NAME,
                    storage=ref.storage,
                    config=ref.config,
                    deletes=ref.deletes,
                    resize=ref.resize,
                ),
            )
        return ansible_peer.run_playbook(
            playbook, ansible_peer.ansible_env(root, sim.peer_auth()["ca_file"])
        )
    if tool == "proxmoxer":
        spec = write_json(root / "px-up.json", ref.px_spec(sim, sim.template_vmid()))
        return run([*python_argv(), str(PX_SCRIPT), "up", str(spec)], env=child_env(), cwd=root)
    raise ValueError(f"unknown tool {tool}")


def measure(proc: Proc, log: list[dict[str, Any]], durations: dict[str, float]) -> dict:
    """Numbers of one run from its process and its slice of the request log."""
    task_time = reqlog.task_time(log, durations)
    overhead = proc.wall - task_time
    return {
        "wall": round(proc.wall, 4),
        **reqlog.summary(log),
        "task_time": round(task_time, 4),
        "overhead": round(overhead, 4),
        "overhead_ratio": round(overhead / task_time, 4) if task_time else None,
        "polls": [asdict(t) for t in reqlog.task_polls(log, durations)],
    }


def one_run(
    bench: Bench, tool: str, durations: dict[str, float], ref: Reference, rerun: bool
) -> dict[str, Any]:
    """A fresh run of one tool (and its converged re-run when asked)."""
    with bench.sim(durations) as sim:
        mark = sim.mark()
        proc = run_tool(bench, tool, sim, ref).check(f"{tool} vm up")
        log = sim.log(mark)
        result = measure(proc, log, durations)
        result["config_diff"] = differences(ref.final, sim.vm_config(NAME))
        if rerun:
            mark = sim.mark()
            again = run_tool(bench, tool, sim, ref).check(f"{tool} re-run")
            relog = sim.log(mark)
            result["rerun"] = {
                "wall": round(again.wall, 4),
                **reqlog.summary(relog),
                "write_paths": [
                    f"{e.get('method')} {reqlog.path_of(e)}" for e in reqlog.writes(relog)
                ],
                "stdout_tail": again.stdout.strip()[-200:],
            }
        result["violations"] = sim.violations()
    return result


def scenario(bench: Bench, ref: Reference) -> dict[str, Any]:
    """Scenarios 1, 2 and 6 for every tool at 0 s and at the scaled durations.

    The tools take turns within each repetition (the first one rotating), so a change in
    the machine's load during the run falls on every tool alike: a ratio of two tools'
    overheads (issue #18) compares runs made seconds apart, not minutes. The scaled runs,
    whose overhead is a small difference of two large numbers, are repeated
    bench.fresh_reps times.
    """
    names = tools(bench)
    labels = [("zero", bench.zero, bench.reps)]
    if bench.scale > 0:
        labels.append(("scaled", bench.durations, bench.fresh_reps))
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    failures: dict[tuple[str, str], list[str]] = {}
    for label, durations, reps in labels:
        for rep in range(reps):
            for tool in names[rep % len(names) :] + names[: rep % len(names)]:
                key = (tool, label)
                if failures.setdefault(key, []):
                    continue  # a tool that failed once is not run again
                bench.say(f"fresh vm up: {tool}, {label} durations, run {rep + 1}/{reps}")
                rerun = label == "zero" and tool != "proxmoxer" and "--no-wait" not in tool
                try:
                    result = one_run(bench, tool, durations, ref, rerun=rerun)
                except Exception as exc:  # a tool's failure is a result, recorded as such
                    failures[key].append(str(exc))
                    continue
                runs.setdefault(key, []).append(result | {"rep": rep})
    out: dict[str, Any] = {"tools": {}}
    for tool in names:
        entry: dict[str, Any] = {}
        for label, _, _ in labels:
            done = runs.get((tool, label), [])
            entry[label] = {
                "runs": done,
                "failures": failures.get((tool, label), []),
                "median": medians(done, KEYS),
            }
        reruns = [r["rerun"] for r in entry["zero"]["runs"] if "rerun" in r]
        entry["rerun"] = {"runs": reruns, "median": medians(reruns, ("wall", "requests", "writes"))}
        entry.setdefault("scaled", entry["zero"])  # scale 0: the same runs
        out["tools"][tool] = entry
    return out
