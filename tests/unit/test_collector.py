"""The console entry pauses Python's cyclic collector while a command starts (imports and
the inventory's validators, objects that live as long as the process) and resumes it
once the inventory is loaded, with start-up's objects frozen."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from provision.cli import collector

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import atexit, gc, json, sys
    from provision.cli import main as cli
    from provision.cli.context import CliContext

    counts = {"collections": 0}

    def count(phase, info):
        if phase == "start":
            counts["collections"] += 1

    gc.callbacks.append(count)
    load = CliContext.load_inventory

    def loaded(self):
        inventory = load(self)
        counts["at_load"] = counts["collections"] - counts["at_main"]
        return inventory

    CliContext.load_inventory = loaded

    def report():
        counts["enabled"] = gc.isenabled()
        counts["frozen"] = gc.get_freeze_count()
        sys.stderr.write("COUNTS " + json.dumps(counts) + "\\n")

    atexit.register(report)
    counts["at_main"] = counts["collections"]
    cli.main(sys.argv[1:])
    """
)


def test_a_command_starts_without_collections_and_collects_once_started():
    inventory = ROOT / "inventories" / "homelab.example.yaml"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "-i", str(inventory), "inventory", "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("COUNTS "))
    counts = json.loads(line.removeprefix("COUNTS "))
    assert counts["at_load"] == 0  # pydantic, the inventory's models: no collection
    assert counts["enabled"] is True  # a long wait afterwards collects its garbage
    assert counts["frozen"] > 10_000  # start-up's objects are out of the collector's sight


def test_resume_without_pause_leaves_the_collector_alone():
    """aihost as a library, or run in-process by tests: the host process's setting stays."""
    frozen = gc.get_freeze_count()
    gc.disable()
    try:
        collector.resume()
        assert not gc.isenabled() and gc.get_freeze_count() == frozen
    finally:
        gc.enable()
