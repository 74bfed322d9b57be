"""What the peers must do to end where aihost ends: learned from aihost's own plan.

One aihost run on an instant simulator gives the exact config keys aihost writes after
cloning (from `vm plan -o json`), the disk resize, the cloud-init snippets it uploads,
and the final VM config every other run is compared with.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.context import Bench
from bench.simctl import TEMPLATE, BenchSim

RESIZE_RE = re.compile(r"grow (\S+) to (\S+)")


@dataclass
class Reference:
    """aihost's plan for a fresh clone of one VM, and the VM it ended with."""

    name: str
    vmid: int
    storage: str
    config: dict[str, str]
    deletes: list[str]
    resize: dict[str, str] | None
    snippets: dict[str, bytes]
    final: dict[str, Any] = field(default_factory=dict)

    def stage_snippets(self, sim: BenchSim) -> None:
        """Put the cloud-init snippets on the simulator's storage (a peer's scp, untimed)."""
        folder = sim.snippets_dir()
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.snippets.items():
            (folder / name).write_bytes(data)

    def px_spec(self, sim: BenchSim, template_vmid: int) -> dict[str, Any]:
        """The proxmoxer script's input for `up`."""
        return {
            **sim.peer_auth(),
            "template_vmid": template_vmid,
            "vmid": self.vmid,
            "name": self.name,
            "storage": self.storage,
            "config": self.config,
            "deletes": self.deletes,
            "resize": self.resize,
        }


def learn(bench: Bench, name: str, vm: dict[str, Any]) -> Reference:
    """Plan and bring up the VM with aihost on an instant simulator; record what it did."""
    with bench.sim(bench.zero) as sim:
        inventory = sim.inventory(sim.root / "inventory.yaml", {name: vm})
        planned = bench.aihost(sim, "-i", str(inventory), "-o", "json", "vm", "plan", name)
        planned.check("aihost vm plan (reference)")
        plan = json.loads(planned.stdout)
        plan = plan[0] if isinstance(plan, list) else plan
        config: dict[str, str] = {}
        deletes: list[str] = []
        resize = None
        for action in plan["actions"]:
            if action["kind"] == "configure":
                for change in action["changes"]:
                    if change["new"] is None:
                        deletes.append(change["key"])
                    else:
                        config[change["key"]] = str(change["new"])
            elif action["kind"] == "resize":
                match = RESIZE_RE.search(action["summary"])
                if match:
                    resize = {"disk": match.group(1), "size": match.group(2)}
        config.setdefault("name", name)
        bench.aihost(sim, "-i", str(inventory), "vm", "up", name).check("aihost vm up (reference)")
        snippets = {p.name: p.read_bytes() for p in sim.snippets_dir().glob(f"*{name}*")}
        final = sim.vm_config(name)
    storage = "local-lvm"
    return Reference(name, int(vm["vmid"]), storage, config, deletes, resize, snippets, final)


def template_name() -> str:
    """The template every tool clones."""
    return TEMPLATE


def write_json(path: Path, data: Any) -> Path:
    """Write JSON for a peer's input."""
    path.write_text(json.dumps(data, indent=1))
    return path
