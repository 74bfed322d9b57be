"""The rendered aihost-health (templates/scripts/aihost-health.sh.j2) run for real in the
sandbox of test_firstboot_flow: it starts Ollama's load of the first model in the
background the moment Ollama answers, so nvidia-smi and the other checks run while the
model loads, and it judges where the model runs only after the load ended. A stand-in
Ollama holds its load open until the stand-in nvidia-smi has run, and records the order."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_firstboot_flow import Sandbox, sandbox

MODEL = "qwen2.5:0.5b"
GPU_LINE = "NVIDIA GeForce RTX 4090, 24564, 580.65.06"


class _World:
    """What the stand-in Ollama saw, in order."""

    def __init__(self, loaded: bool) -> None:
        self.loaded = loaded
        self.loading = threading.Event()
        self.probed = threading.Event()
        self.log: list[str] = []


class _Ollama(BaseHTTPRequestHandler):
    world: _World

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        world = self.world
        if self.path == "/probe":  # the stand-in nvidia-smi: is a load under way (by 5 s)?
            during = not world.loaded and world.loading.wait(5)
            world.log.append("nvidia-smi during the load" if during else "nvidia-smi")
            world.probed.set()
            self._send({})
            return
        world.log.append(f"GET {self.path}")
        held = [{"name": MODEL, "size": 100, "size_vram": 100}] if world.loaded else []
        replies = {
            "/api/version": {"version": "0.32.15"},
            "/api/tags": {"models": [{"name": MODEL}]},
            "/api/ps": {"models": held},
        }
        self._send(replies.get(self.path, {}))

    def do_POST(self) -> None:
        world = self.world
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        world.log.append(f"POST {self.path} {body.get('model')} prompt={body.get('prompt')!r}")
        world.loading.set()
        world.probed.wait(5)  # a load that lasts until nvidia-smi ran (at most 5 s)
        world.loaded = True
        world.log.append("load done")
        self._send({"done": True})


@pytest.fixture
def ollama() -> Iterator[tuple[int, _World]]:
    world = _World(loaded=False)
    handler = type("Ollama", (_Ollama,), {"world": world})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[1], world
    server.shutdown()


def _box(tmp_path: Path, port: int) -> Sandbox:
    box = sandbox(tmp_path, {"port": port, "models": [MODEL]})
    script = tmp_path / "bin/aihost-health"
    script.write_text(script.read_text().replace("/etc/aihost/models", str(tmp_path / "models")))
    (tmp_path / "models").write_text(f"# the VM's models\n{MODEL}\n")
    box.stub("nvidia-smi", f'curl -fsS http://127.0.0.1:{port}/probe >/dev/null; echo "{GPU_LINE}"')
    return box


def test_the_first_models_load_runs_while_nvidia_smi_checks_the_gpu(
    tmp_path: Path, ollama: tuple[int, _World]
) -> None:
    port, world = ollama
    run = _box(tmp_path, port).run("bin/aihost-health")
    assert run.returncode == 0, run.stderr
    assert "nvidia-smi during the load" in world.log, world.log
    assert f"POST /api/generate {MODEL} prompt=''" in world.log
    # where the model runs is judged from /api/ps after the load, not before it
    assert world.log.index("load done") < len(world.log) - 1 - world.log[::-1].index("GET /api/ps")
    report = json.loads(run.stdout)
    assert report["runtime"]["on_gpu"] is True and report["gpu"]["name"] == GPU_LINE.split(",")[0]


def test_a_model_already_loaded_is_not_loaded_again(
    tmp_path: Path, ollama: tuple[int, _World]
) -> None:
    port, world = ollama
    world.loaded = True
    run = _box(tmp_path, port).run("bin/aihost-health")
    assert run.returncode == 0, run.stderr
    assert not [line for line in world.log if line.startswith("POST")]
    assert json.loads(run.stdout)["runtime"]["on_gpu"] is True


def measure(runs: int, load: float) -> dict[str, list[float]]:
    """The rendered script's own time (docs/guest-timing.md `guest_health` and
    `guest_health_serial`), against a stand-in Ollama whose load takes `load` seconds and
    an instant nvidia-smi: per run, the whole run, and the part before the load starts
    plus the part after it ends."""
    import tempfile
    import time

    marks: dict[str, float] = {}

    class Timed(_Ollama):
        world = _World(loaded=False)

        def do_POST(self) -> None:
            marks["start"] = time.monotonic()
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(load)
            self.world.loaded = True
            marks["end"] = time.monotonic()
            self._send({"done": True})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Timed)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    out: dict[str, list[float]] = {"total": [], "serial": []}
    with tempfile.TemporaryDirectory() as tmp:
        box = _box(Path(tmp), server.server_address[1])
        box.stub("nvidia-smi", f'echo "{GPU_LINE}"')
        for _ in range(runs):
            Timed.world.loaded = False
            began = time.monotonic()
            run = box.run("bin/aihost-health")
            ended = time.monotonic()
            assert run.returncode == 0 and json.loads(run.stdout)["runtime"]["on_gpu"]
            out["total"].append(ended - began)
            out["serial"].append(marks["start"] - began + ended - marks["end"])
    server.shutdown()
    return out


if __name__ == "__main__":  # python3 tests/unit/test_health_overlap.py [RUNS [LOAD]]
    import statistics
    import sys

    given = sys.argv[1:3]
    args = [*given, *["40", "0"][len(given) :]]
    for key, values in measure(int(args[0]), float(args[1])).items():
        print(f"{key}: median {statistics.median(values):.3f} s, fastest {min(values):.3f} s")
