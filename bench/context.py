"""What every scenario shares: settings, the durations, the work folder, progress output."""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Proc, aihost_argv, child_env, run
from bench.simctl import GPU_PCI, BenchSim, durations_for

# The GPU VM of scenarios 1, 2 and 4 (fixed vmids keep disk names equal across tools and
# make Ansible's clone task idempotent: without newid it clones again on every run).
LLM_VM: dict[str, Any] = {
    "vmid": 200,
    "gpu": "rtx4090",
    "runtime": "ollama",
    "models": ["llama3.1:8b"],
}
OTHER_VM: dict[str, Any] = {"vmid": 201, "gpu": "rtx4090", "runtime": "none"}
# The proxmoxer peer (run as its own process).
PX_SCRIPT = Path(__file__).with_name("px_script.py")


@dataclass
class Bench:
    """Settings of one benchmark run and helpers the scenarios share."""

    scale: float
    reps: int
    workdir: Path
    fresh_reps: int = 7  # scenario 1 at scaled durations: its overhead ratio is noisy
    validate: bool = False
    peers: tuple[str, ...] = ("ansible", "proxmoxer")
    startup_reps: int = 10
    fleet_sizes: tuple[int, ...] = (1, 5, 20)
    quiet: bool = False
    notes: list[str] = field(default_factory=list)
    _seed: Path | None = None

    @property
    def durations(self) -> dict[str, float]:
        """Task durations at this run's scale."""
        return durations_for(self.scale)

    @property
    def zero(self) -> dict[str, float]:
        """Instant tasks (for request counts: then polls equal tasks)."""
        return durations_for(0.0)

    def say(self, message: str) -> None:
        """Progress on stderr."""
        if not self.quiet:
            print(f"bench: {message}", file=sys.stderr, flush=True)

    def sim(self, durations: dict[str, float]) -> BenchSim:
        """A fresh simulator (a reset world: a copy of the seed) with these durations."""
        return BenchSim(durations, root=self.workdir, validate=self.validate, seed=self.seed())

    def seed(self) -> Path:
        """The world every run starts from: the default fixture with both GPUs mapped.

        Made once with `aihost gpu map` (as a user sets a node up), then copied per run.
        """
        if self._seed is None:
            sim = BenchSim(self.zero, root=self.workdir)
            try:
                inventory = sim.inventory(sim.root / "inventory.yaml", {})
                for gpu, pci in GPU_PCI.items():
                    self.aihost(sim, "-i", str(inventory), "gpu", "map", gpu, "--pci", pci).check(
                        f"aihost gpu map {gpu} (set-up)"
                    )
            finally:
                sim.stop()
            self._seed = sim.state_dir
        return self._seed

    def aihost(self, sim: BenchSim, *args: str) -> Proc:
        """Run `aihost ARGS` as a user would, with its state kept in the run's folder."""
        env = child_env({"AIHOST_STATE_DIR": str(sim.root / "aihost-state")})
        return run([*aihost_argv(), *args], env=env, cwd=sim.root)


def median(values: list[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def medians(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, float | None]:
    """Median of each numeric key over runs (keys missing in a run are skipped)."""
    out: dict[str, float | None] = {}
    for key in keys:
        values = [float(r[key]) for r in runs if isinstance(r.get(key), int | float)]
        out[key] = median(values)
    return out
