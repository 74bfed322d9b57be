"""The model download as aihost's wait shows it (provision/guest/progress.py and
wait_first_boot): the state file's `download` parsed, the rate between two readings and
the time left at it, the line for people and the JSON event, against a scripted agent."""

from __future__ import annotations

import json

from test_first_boot_wait import _agent, _Client

from provision.guest.firstboot import wait_first_boot
from provision.guest.progress import Download, DownloadMeter, describe, event, parse_download

GB = 10**9


def _models(completed: int, total: int | None = 4 * GB, model: str = "llama3.1:8b") -> str:
    download = {"model": model, "completed": completed, "total": total, "index": 1, "count": 2}
    return json.dumps({"phase": "models", "status": "running", "error": None, "download": download})


def test_parse_download_takes_the_fields_and_refuses_malformed_ones():
    assert parse_download({"model": "m", "completed": 5, "total": 10}) == Download("m", 5, 10)
    assert parse_download({"model": "m", "completed": 5, "total": None}) == Download("m", 5, None)
    for bad in (
        None,
        [],
        {"completed": 1},
        {"model": "m", "completed": -1},
        {"model": "m", "completed": "1"},
    ):
        assert parse_download(bad) is None


def test_the_rate_comes_from_two_readings_of_the_same_model():
    meter = DownloadMeter()
    first = Download("m", 1 * GB, 4 * GB)
    assert meter.read(first, 10.0) and meter.rate is None and meter.eta(first) is None
    assert not meter.read(first, 12.0)  # nothing new
    second = Download("m", 2 * GB, 4 * GB)
    assert meter.read(second, 20.0)
    assert meter.rate == GB / 10.0 and meter.eta(second) == 20.0
    other = Download("n", 0, 1 * GB, 2, 2)
    assert meter.read(other, 21.0) and meter.rate is None  # a new model: no rate yet


def test_the_line_and_the_event_say_bytes_percentage_and_time_left():
    download = Download("llama3.1:8b", 1_230_000_000, 4_920_753_328, 1, 2)
    assert describe(download, 185.0) == (
        "downloading llama3.1:8b (1/2): 1.23 of 4.92 GB (25.0%), about 3 min left"
    )
    assert describe(Download("m", 5 * 10**8, None), None) == "downloading m: 0.50 GB"
    assert event(download, 1e7, 185.0) == {
        "event": "download",
        "model": "llama3.1:8b",
        "index": 1,
        "count": 2,
        "completed": 1_230_000_000,
        "total": 4_920_753_328,
        "percent": 25.0,
        "rate_bytes_per_s": 1e7,
        "eta_seconds": 185.0,
    }


def test_wait_first_boot_reports_each_new_reading_with_an_estimate():
    reads = [_models(0), _models(GB // 10), _models(GB // 10), _models(GB), _state_done()]
    agent, _now = _agent(_Client(reads))
    lines: list[str] = []
    events: list[dict] = []
    wait_first_boot(agent, 600, lines.append, events=events.append)
    downloads = [line for line in lines if "downloading" in line]
    assert downloads[0] == "first boot: downloading llama3.1:8b (1/2): 0.00 of 4.00 GB (0.0%)"
    assert len(downloads) == 3  # the repeated reading is not shown again
    assert downloads[-1].endswith("left") and "(25.0%)" in downloads[-1]
    kinds = [e["event"] for e in events]
    assert kinds == ["phase", "download", "download", "download", "phase"]
    assert events[-2]["eta_seconds"] is not None and events[-2]["rate_bytes_per_s"] > 0
    assert events[-1] == {"event": "phase", "phase": "done", "status": "ok"}


def _state_done() -> str:
    return json.dumps({"phase": "done", "status": "ok", "error": None})


def _waiting(holder: str) -> str:
    wait = {"holder": holder}
    return json.dumps({"phase": "models", "status": "running", "error": None, "store_wait": wait})


def test_wait_first_boot_says_whose_download_into_the_store_it_waits_for():
    """aihost-state's store-lock notes the VM holding the model store's lock; the wait
    says so once per holder, then the download's own readings follow."""
    holder = "llm-a (instance aihost-llm-a-g1, pid 812)"
    reads = [_waiting(holder), _waiting(holder), _models(0), _state_done()]
    agent, _now = _agent(_Client(reads))
    lines: list[str] = []
    events: list[dict] = []
    wait_first_boot(agent, 600, lines.append, events=events.append)
    waits = [line for line in lines if "waiting for" in line]
    assert waits == [f"first boot: waiting for {holder} to finish its download into the store"]
    assert [e["event"] for e in events] == ["phase", "store_wait", "download", "phase"]
    assert events[1] == {"event": "store_wait", "holder": holder}
