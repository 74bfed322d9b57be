"""`vm up` shows the model download while first boot pulls it: bytes, percentage and the
time left at the rate seen between reads of the guest's state file; with -o json the
same readings are JSON events on stderr and stdout stays one JSON document. The
simulated guest's download takes about 1.5 s here (provision/sim/guest_timeline.py)."""

from __future__ import annotations

import json
import re

from aihost_testing import run_aihost

from provision.sim.guest_models import model_bytes

SPEC = {"runtime": "ollama", "models": ["llama3.2:3b"]}
# llama3.2:3b is 2.02 GB: 0.75 s per GB downloads it in about 1.5 s.
DURATIONS = {"guest_apt": 0.05, "guest_runtime": 0.05, "guest_pull_s_per_gb": 0.75}
LINE = re.compile(
    r"small-box: first boot: downloading llama3\.2:3b: (\d+\.\d\d) of 2\.02 GB "
    r"\((\d+\.\d)%\)(, about \d+ s left)?$"
)


def test_vm_up_shows_the_downloads_bytes_percentage_and_time_left(sim, tmp_path):
    sim.control("durations", DURATIONS)
    inventory = sim.inventory(tmp_path / "inv.yaml", {"small-box": SPEC})
    result = run_aihost("-i", str(inventory), "vm", "up", "small-box")
    assert result.exit_code == 0, result.stderr
    lines = [m for m in map(LINE.match, result.stderr.splitlines()) if m]
    assert len(lines) >= 2, result.stderr
    percents = [float(m.group(2)) for m in lines]
    assert percents == sorted(percents) and percents[0] < 100.0
    assert any(m.group(3) for m in lines), "no estimate of the time left"
    assert "small-box: first boot: done ok" in result.stderr


def test_json_output_emits_download_events_and_one_document(sim, tmp_path):
    sim.control("durations", DURATIONS)
    inventory = sim.inventory(tmp_path / "inv.yaml", {"small-box": SPEC})
    result = run_aihost("-i", str(inventory), "-o", "json", "vm", "up", "small-box")
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)  # exactly one document on stdout
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    downloads = [e for e in events if e["event"] == "download"]
    assert len(downloads) >= 2, result.stderr
    assert {e["vm"] for e in downloads} == {"small-box"}
    assert {(e["model"], e["total"], e["index"], e["count"]) for e in downloads} == {
        ("llama3.2:3b", model_bytes("llama3.2:3b"), 1, 1)
    }
    assert all(0 <= e["percent"] <= 100 for e in downloads)
    assert any(e["eta_seconds"] is not None and e["rate_bytes_per_s"] > 0 for e in downloads)
    phases = [(e["phase"], e["status"]) for e in events if e["event"] == "phase"]
    assert ("models", "running") in phases and phases[-1] == ("done", "ok")
