"""Scenario 4: move the GPU between two VMs; downtime against the simulator's task times.

Set-up (not timed, done by aihost on an instant twin server over the same world):
image-box is brought up with the GPU, then llm-box takes it (`vm up --take-gpu`), so
llm-box runs with the GPU and image-box is stopped without it. Then each tool moves the
GPU to image-box. Downtime runs from the holder's shutdown request to the tool's exit
(for aihost: after nvidia-smi answered in the target); the simulator's task time on that
path is shutdown + start.
"""

from __future__ import annotations

from typing import Any

from bench import ansible_peer, reqlog
from bench.context import LLM_VM, OTHER_VM, PX_SCRIPT, Bench, medians
from bench.procs import Proc, child_env, python_argv, run
from bench.reference import write_json
from bench.sameconfig import differences
from bench.simctl import BenchSim

HOLDER, TARGET, GPU = "llm-box", "image-box", "rtx4090"
VALUE = "mapping=rtx4090,pcie=1"
KEYS = (
    "wall",
    "downtime",
    "task_time",
    "overhead",
    "overhead_ratio",
    "requests",
    "writes",
    "task_polls",
)


def tools(bench: Bench) -> list[str]:
    """The tools of scenario 4, aihost first."""
    return ["aihost", "aihost --no-verify", *bench.peers]


def _setup(bench: Bench, sim: BenchSim) -> None:
    with BenchSim(bench.zero, share=sim) as fast:
        inventory = fast.inventory(fast.root / "inventory.yaml", {HOLDER: LLM_VM, TARGET: OTHER_VM})
        bench.aihost(fast, "-i", str(inventory), "vm", "up", TARGET).check("swap set-up 1")
        bench.aihost(fast, "-i", str(inventory), "vm", "up", HOLDER, "--take-gpu").check(
            "swap set-up 2"
        )


def run_tool(bench: Bench, tool: str, sim: BenchSim) -> Proc:
    """Move the GPU from the holder to the target with one tool."""
    root = sim.root
    if tool.startswith("aihost"):
        inventory = sim.inventory(root / "inventory.yaml", {HOLDER: LLM_VM, TARGET: OTHER_VM})
        extra = ["--no-verify"] if "--no-verify" in tool else []
        return bench.aihost(sim, "-i", str(inventory), "gpu", "swap", GPU, "--to", TARGET, *extra)
    auth = sim.peer_auth()
    if tool == "ansible":
        playbook = ansible_peer.write_playbook(
            root / "swap.yml",
            ansible_peer.swap_playbook(
                auth, holder=LLM_VM["vmid"], target=OTHER_VM["vmid"], key="hostpci0", value=VALUE
            ),
        )
        return ansible_peer.run_playbook(playbook, ansible_peer.ansible_env(root, auth["ca_file"]))
    if tool == "proxmoxer":
        spec = write_json(
            root / "px-swap.json",
            {
                **auth,
                "holder": LLM_VM["vmid"],
                "target": OTHER_VM["vmid"],
                "key": "hostpci0",
                "value": VALUE,
            },
        )
        return run([*python_argv(), str(PX_SCRIPT), "swap", str(spec)], env=child_env(), cwd=root)
    raise ValueError(f"unknown tool {tool}")


def one_run(bench: Bench, tool: str) -> dict[str, Any]:
    """Set up two VMs, swap with one tool, measure."""
    durations = bench.durations
    with bench.sim(durations) as sim:
        _setup(bench, sim)
        mark = sim.mark()
        proc = run_tool(bench, tool, sim).check(f"{tool} gpu swap")
        log = sim.log(mark)
        down_from = reqlog.first_time(log, "POST", "/status/shutdown")
        task_time = durations["qmshutdown"] + durations["qmstart"]
        downtime = proc.ended - down_from if down_from is not None else None
        overhead = downtime - task_time if downtime is not None else None
        result = {
            "wall": round(proc.wall, 4),
            **reqlog.summary(log),
            "downtime": round(downtime, 4) if downtime is not None else None,
            "task_time": round(task_time, 4),
            "overhead": round(overhead, 4) if overhead is not None else None,
            "overhead_ratio": round(overhead / task_time, 4)
            if overhead is not None and task_time
            else None,
            "configs": {name: sim.vm_config(name) for name in (HOLDER, TARGET)},
            "violations": sim.violations(),
        }
    return result


def scenario(bench: Bench) -> dict[str, Any]:
    """Scenario 4 for every tool; configs compared with aihost's first run."""
    out: dict[str, Any] = {"tools": {}}
    reference: dict[str, Any] | None = None
    for tool in tools(bench):
        runs, failures = [], []
        for rep in range(bench.reps):
            bench.say(f"gpu swap: {tool}, run {rep + 1}/{bench.reps}")
            try:
                result = one_run(bench, tool)
            except Exception as exc:  # recorded, not hidden
                failures.append(str(exc))
                break
            configs = result.pop("configs")
            if reference is None:
                reference = configs
            result["config_diff"] = [
                f"{name}: {d}"
                for name in configs
                for d in differences(reference[name], configs[name])
            ]
            runs.append(result)
        out["tools"][tool] = {"runs": runs, "failures": failures, "median": medians(runs, KEYS)}
    return out
