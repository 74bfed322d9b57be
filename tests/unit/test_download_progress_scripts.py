"""The real guest scripts record the model download's progress in the state file
(`download`: model, completed, total, index, count), as aihost's wait reads it: Ollama's
streamed /api/pull (every layer's bytes), llama.cpp's GGUF download by curl (the file's
size against the server's Content-Length). Run for real in the first-boot sandbox."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_firstboot_flow import sandbox

GGUF = b"GGUF, twenty-two bytes"


class _Server(BaseHTTPRequestHandler):
    """Ollama's streamed pull (ndjson lines; `fail` ends it with an error line under
    HTTP 200, as routes.go streamResponse does once output began) and a GGUF file."""

    fail = False

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        assert self.path == "/api/pull" and request["stream"] is True
        lines: list[dict[str, Any]] = [
            {"status": "pulling manifest"},
            {"status": "pulling aaa", "digest": "sha256:aaa", "total": 1000},
            {"status": "pulling aaa", "digest": "sha256:aaa", "total": 1000, "completed": 400},
            {"status": "pulling aaa", "digest": "sha256:aaa", "total": 1000, "completed": 1000},
            {"status": "pulling bbb", "digest": "sha256:bbb", "total": 20, "completed": 20},
        ]
        lines.append({"error": "max retries exceeded"} if self.fail else {"status": "success"})
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        for line in lines:
            self.wfile.write(json.dumps(line).encode() + b"\n")

    def _file(self, body: bool) -> None:
        if self.path != "/m.gguf":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(GGUF)))
        self.end_headers()
        if body:
            self.wfile.write(GGUF)

    def do_GET(self) -> None:
        self._file(True)

    def do_HEAD(self) -> None:
        self._file(False)


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    _Server.fail = False


def _ollama_box(tmp_path: Path, port: int):
    box = sandbox(tmp_path, {"port": port, "models": ["llama3.2:3b"]})
    script = tmp_path / "bin/aihost-setup-runtime"
    script.write_text(script.read_text().replace("/etc/aihost/models", str(tmp_path / "models")))
    (tmp_path / "models").write_text("# pulled in order\nqwen2.5:0.5b\n\nllama3.2:3b\n")
    assert box.run("bin/aihost-state", "set", "models", "running").returncode == 0
    return box


def test_ollamas_streamed_pull_records_every_layers_bytes(tmp_path: Path, server: int) -> None:
    box = _ollama_box(tmp_path, server)
    run = box.run("bin/aihost-setup-runtime", "models")
    assert run.returncode == 0, run.stderr
    state = box.state()
    assert (state["phase"], state["status"]) == ("models", "running")
    assert state["download"] == {
        "model": "llama3.2:3b",
        "completed": 1020,
        "total": 1020,
        "index": 2,
        "count": 2,
    }
    box.run("bin/aihost-state", "set", "models", "ok")
    assert "download" not in box.state()  # a phase record ends the reading


def test_an_error_line_in_the_pull_stream_fails_with_ollamas_text(
    tmp_path: Path, server: int
) -> None:
    _Server.fail = True
    box = _ollama_box(tmp_path, server)
    run = box.run("bin/aihost-setup-runtime", "models")
    assert run.returncode == 1
    assert (
        "aihost: ollama could not pull qwen2.5:0.5b (HTTP 200): max retries exceeded" in run.stderr
    )


def test_the_gguf_download_records_its_size_against_content_length(
    tmp_path: Path, server: int
) -> None:
    import hashlib

    url = f"http://127.0.0.1:{server}/m.gguf"
    spec = {"model_url": url, "sha256": hashlib.sha256(GGUF).hexdigest()}
    box = sandbox(tmp_path, {"runtime": "llamacpp", "models": [], "llamacpp": spec}, gpu=False)
    script = tmp_path / "bin/aihost-setup-runtime"
    model = tmp_path / "m.gguf"
    text = script.read_text()
    script.write_text(text.replace(text.split("MODEL=", 1)[1].split("\n", 1)[0], f"'{model}'"))
    box.stub("systemctl", "exit 0")
    box.run("bin/aihost-state", "set", "models", "running")
    box.run("bin/aihost-setup-runtime", "models")  # no llama-server here: fails after
    assert model.read_bytes() == GGUF
    assert box.state()["download"] == {
        "model": "m.gguf",
        "completed": len(GGUF),
        "total": len(GGUF),
        "index": 1,
        "count": 1,
    }


def test_vllms_hugging_face_token_reaches_curl_in_a_file_never_on_its_command_line(
    tmp_path: Path,
) -> None:
    from test_firstboot_flow import Sandbox
    from test_render_helpers import files, inventory, parse

    from provision.cloudinit import render_user_data

    token = 'hf_a"b$c\\d`e'
    vm = {
        "runtime": "vllm",
        "models": ["org/model"],
        "hf_token": {"secret_env": "HF", "store_in_user_data": True},
    }
    text = render_user_data(inventory(vm), "box", secret_reader=lambda _ref, _what: token).text
    doc = parse(text)
    env_file = tmp_path / "vllm.env"
    env_file.write_text(files(doc)["/etc/aihost/vllm.env"]["content"])
    box = Sandbox(tmp_path / "guest", doc)
    script = tmp_path / "guest/bin/aihost-setup-runtime"
    script.write_text(script.read_text().replace("/etc/aihost/vllm.env", str(env_file)))
    seen = tmp_path / "curl.log"
    box.stub(  # the Hugging Face API call logs its argv and its header file; health answers
        "curl",
        f'for a in "$@"; do case "$a" in @*) cat "${{a#@}}" >>{seen};; esac; done\n'
        f'echo "argv: $*" >>{seen}\n'
        'case "$*" in *huggingface.co/api/models/org/model*) '
        'echo \'{"siblings": [{"rfilename": "a.safetensors", "size": 7}]}\';; esac',
    )
    run = box.run("bin/aihost-setup-runtime", "models")
    assert run.returncode == 0, run.stderr
    log = seen.read_text()
    assert 'Authorization: Bearer hf_a"b$c\\d`e\n' in log
    assert all(token not in line for line in log.splitlines() if line.startswith("argv:"))
    assert "huggingface.co/api/models/org/model?blobs=true" in log


def test_with_a_store_vllms_progress_reads_the_stores_hugging_face_cache(tmp_path: Path) -> None:
    """HF_HOME is the store's directory (the unit says so): the models phase measures the
    model's folder in that hub cache, where vLLM really downloads it."""
    from test_firstboot_flow import Sandbox
    from test_render_helpers import files, parse
    from test_render_store import _stored

    from provision.cloudinit import render_user_data

    doc = parse(render_user_data(_stored({"runtime": "vllm", "models": ["org/m"]}), "box").text)
    unit = files(doc)["/etc/systemd/system/vllm.service"]["content"]
    (hf_home,) = [ln.split("=", 2)[2] for ln in unit.splitlines() if "HF_HOME=" in ln]
    box = Sandbox(tmp_path / "guest", doc)
    blobs = Path(box.rewrite(hf_home)) / "hub/models--org--m/blobs"
    blobs.mkdir(parents=True)
    (blobs / "aaa.incomplete").write_bytes(b"4444")
    health = tmp_path / "health-asked"
    box.stub(  # Hugging Face's API sizes the repository; /health answers the second time
        "curl",
        'case "$*" in *huggingface.co/api/models/org/m*) '
        'echo \'{"siblings": [{"rfilename": "a.safetensors", "size": 10}]}\';; '
        f"*/health*) [ -f {health} ] && exit 0; touch {health}; exit 7;; esac",
    )
    box.stub("systemctl", 'case "$1" in is-failed) exit 1;; esac')
    box.stub("sleep", "exit 0")
    box.run("bin/aihost-state", "set", "models", "running")
    run = box.run("bin/aihost-setup-runtime", "models")
    assert run.returncode == 0, run.stderr
    assert box.state()["download"] == {
        "model": "org/m",
        "completed": 4,
        "total": 10,
        "index": 1,
        "count": 1,
    }
