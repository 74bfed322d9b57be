"""The rendered first-boot scripts run for real in a sandbox: aihost-firstboot (runcmd),
aihost-boot (scripts-per-boot), aihost-state, the driver's GPU-generation choice, the
health script and Ollama's pull errors. Guest paths are moved under tmp_path and the
commands that would change the machine (systemctl, apt-get, ubuntu-drivers) are stubs;
sh, python3, curl and jq are the real ones.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_render_helpers import files, inventory, parse

from provision.cloudinit import render_user_data
from provision.errors import InputError
from provision.inventory.checks import check_inventory

SCRIPTS = {
    "/usr/local/sbin/aihost-firstboot": "bin/aihost-firstboot",
    "/var/lib/cloud/scripts/per-boot/aihost-boot": "cloud/scripts/per-boot/aihost-boot",
    "/usr/local/sbin/aihost-state": "bin/aihost-state",
    "/usr/local/sbin/aihost-install-driver": "bin/aihost-install-driver",
    "/usr/local/sbin/aihost-setup-runtime": "bin/aihost-setup-runtime",
    "/usr/local/bin/aihost-health": "bin/aihost-health",
}


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        if os.environ.get("AIHOST_REQUIRE_TOOLS") == "1":
            pytest.fail(f"needs {', '.join(missing)}; .ci/run installs them")
        pytest.skip(f"needs {', '.join(missing)}")


class Sandbox:
    """A guest's files under root; run() runs one of them with stubs first on PATH."""

    def __init__(self, root: Path, doc: dict[str, Any]) -> None:
        self.root = root
        self.doc = doc
        (root / "stub").mkdir(parents=True)
        (root / "aihost").mkdir()
        for path, item in files(doc).items():
            if path in SCRIPTS:
                self.install(SCRIPTS[path], item["content"])
        self.instance("aihost-box-g1")
        self.stub("systemctl", 'echo "systemctl $*" >>"$LOG"')

    def rewrite(self, text: str) -> str:
        """Guest paths to sandbox paths (longest first)."""
        pairs = sorted(SCRIPTS.items(), key=lambda kv: -len(kv[0]))
        for guest, local in pairs:
            text = text.replace(guest, str(self.root / local))
        return text.replace("/var/lib/aihost", str(self.root / "aihost")).replace(
            "/var/lib/cloud", str(self.root / "cloud")
        )

    def install(self, relative: str, content: str) -> None:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.rewrite(content))
        target.chmod(target.stat().st_mode | stat.S_IXUSR)

    def stub(self, name: str, body: str, where: str = "stub") -> None:
        self.install(f"{where}/{name}", f"#!/bin/sh\n{body}\n")

    def instance(self, iid: str) -> None:
        data = self.root / "cloud/data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "instance-id").write_text(iid + "\n")

    def run(self, relative: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PATH": f"{self.root / 'stub'}:/usr/bin:/bin",
            "LOG": str(self.root / "calls.log"),
        }
        return subprocess.run(
            [str(self.root / relative), *args], capture_output=True, text=True, env=env, timeout=60
        )

    def state(self) -> dict[str, Any]:
        return json.loads((self.root / "aihost/state.json").read_text())


def sandbox(tmp_path: Path, vm: dict[str, Any] | None = None, gpu: bool = True) -> Sandbox:
    _need("python3", "jq", "curl")
    doc = parse(render_user_data(inventory(vm, gpu=gpu), "box").text)
    return Sandbox(tmp_path, doc)


def test_driver_failure_is_recorded_with_its_error_and_fails_runcmd(tmp_path: Path) -> None:
    box = sandbox(tmp_path)
    box.stub(
        "aihost-install-driver",
        'echo "curl: (7) Failed to connect to '
        'developer.download.nvidia.com port 443: Connection refused" >&2; exit 7',
        "bin",
    )
    run = box.run("bin/aihost-firstboot")
    assert run.returncode == 1  # the last runcmd command fails: scripts-user fails
    state = box.state()
    assert (state["phase"], state["status"]) == ("driver", "failed")
    assert state["error"] == (
        "aihost-install-driver exited 7: curl: (7) Failed to connect to "
        "developer.download.nvidia.com port 443: Connection refused"
    )
    assert state["instance_id"] == "aihost-box-g1"
    assert "developer.download.nvidia.com" in run.stderr  # still in cloud-init's log
    assert not (tmp_path / "aihost/reboot-required").exists()


def test_reboot_then_runtime_models_health_on_the_next_boot_once(tmp_path: Path) -> None:
    box = sandbox(tmp_path)
    box.stub("aihost-install-driver", f"touch {tmp_path}/aihost/reboot-required", "bin")
    box.stub("aihost-setup-runtime", 'echo "setup $1" >>"$LOG"', "bin")
    box.stub("aihost-health", 'echo "{}"', "bin")
    per_boot = "cloud/scripts/per-boot/aihost-boot"
    assert box.run(per_boot).returncode == 0  # per-boot runs before runcmd: nothing yet
    assert not (tmp_path / "aihost/state.json").exists()
    assert box.run("bin/aihost-firstboot").returncode == 0
    assert (box.state()["phase"], box.state()["status"]) == ("reboot", "pending")
    assert not (tmp_path / "calls.log").read_text().count("setup")
    # The next boot.
    run = box.run(per_boot)
    assert run.returncode == 0, run.stderr
    state = box.state()
    assert (state["phase"], state["status"]) == ("done", "ok")
    assert [
        state["phases"][p]["status"] for p in ("driver", "reboot", "runtime", "models", "health")
    ] == ["ok"] * 5
    assert "aihost: first boot of box done after" in run.stdout
    # Later boots: nothing runs again, no message.
    again = box.run(per_boot)
    assert again.returncode == 0 and again.stdout == ""
    assert (tmp_path / "calls.log").read_text().count("setup runtime") == 1


def test_a_failed_models_phase_fails_the_boot_and_keeps_the_text(tmp_path: Path) -> None:
    box = sandbox(tmp_path, gpu=False)
    box.stub(
        "aihost-setup-runtime",
        '[ "$1" = runtime ] && exit 0\necho "aihost: ollama could '
        'not pull x (HTTP 500): pull model manifest: file does not exist" >&2; exit 1',
        "bin",
    )
    run = box.run("bin/aihost-firstboot")  # no GPU: no reboot, setup continues at once
    assert run.returncode == 1
    state = box.state()
    assert (state["phase"], state["status"]) == ("models", "failed")
    assert state["error"].endswith("pull model manifest: file does not exist")
    assert not (tmp_path / "aihost/setup-done").exists()


def test_reprovision_clears_the_markers_and_runs_setup_again(tmp_path: Path) -> None:
    box = sandbox(tmp_path, gpu=False)
    box.stub("aihost-setup-runtime", 'echo "setup $1" >>"$LOG"', "bin")
    box.stub("aihost-health", 'echo "{}"', "bin")
    assert box.run("bin/aihost-firstboot").returncode == 0
    assert (tmp_path / "aihost/setup-done").exists()
    box.instance("aihost-box-g2")  # `vm up --reprovision`: a new instance-id
    assert box.run("cloud/scripts/per-boot/aihost-boot").returncode == 0  # before runcmd
    assert (tmp_path / "calls.log").read_text().count("setup models") == 1
    assert box.run("bin/aihost-firstboot").returncode == 0
    assert (tmp_path / "calls.log").read_text().count("setup models") == 2
    assert box.state()["instance_id"] == "aihost-box-g2"


GENERATIONS = [
    ("0x1e04", "open"),  # RTX 2080 Ti (Turing)
    ("0x2684", "open"),  # RTX 4090 (Ada)
    ("0x20b0", "open"),  # A100 (Ampere)
    ("0x1b06", "proprietary"),  # GTX 1080 Ti (Pascal)
    ("0x1b38", "proprietary"),  # Tesla P40 (Pascal)
    ("0x1db4", "proprietary"),  # V100 (Volta)
    ("0x13c2", "proprietary"),  # GTX 970 (Maxwell)
]


def _nvidia_modules(
    tmp_path: Path, devices: list[tuple[str, str]]
) -> subprocess.CompletedProcess[str]:
    doc = parse(render_user_data(inventory({"distro": "debian-12"}), "box").text)
    script = files(doc)["/usr/local/sbin/aihost-install-driver"]["content"]
    start = script.index("nvidia_modules() {")
    end = script.index("\n}\n", start) + 3
    sysfs = tmp_path / "sys"
    for index, (device, klass) in enumerate(devices):
        dev = sysfs / f"0000:0{index}:00.0"
        dev.mkdir(parents=True)
        (dev / "vendor").write_text("0x10de\n")
        (dev / "device").write_text(device + "\n")
        (dev / "class").write_text(klass + "\n")
    sysfs.mkdir(parents=True, exist_ok=True)
    body = script[start:end].replace("/sys/bus/pci/devices", str(sysfs))
    return subprocess.run(
        ["sh", "-c", body + "nvidia_modules"], capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(("device", "modules"), GENERATIONS)
def test_kernel_modules_follow_the_gpu_generation(
    tmp_path: Path, device: str, modules: str
) -> None:
    run = _nvidia_modules(tmp_path, [(device, "0x030000"), ("0x10f0", "0x040300")])
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == modules


def test_kepler_and_no_gpu_are_refused_with_a_reason(tmp_path: Path) -> None:
    run = _nvidia_modules(tmp_path / "a", [("0x1024", "0x030200")])  # Tesla K40
    assert run.returncode == 1 and "Kepler or older" in run.stderr
    run = _nvidia_modules(tmp_path / "b", [])
    assert run.returncode == 1 and "no NVIDIA GPU on this VM's PCI bus" in run.stderr


def test_ubuntu_drivers_exit_0_without_a_driver_is_a_failure(tmp_path: Path) -> None:
    box = sandbox(tmp_path, {"distro": "ubuntu-24.04"})
    script = (tmp_path / "bin/aihost-install-driver").read_text()
    sysfs = tmp_path / "sys/0000:01:00.0"
    sysfs.mkdir(parents=True)
    for name, value in (("vendor", "0x10de"), ("device", "0x2684"), ("class", "0x030000")):
        (sysfs / name).write_text(value + "\n")
    (tmp_path / "bin/aihost-install-driver").write_text(
        script.replace("/sys/bus/pci/devices", str(tmp_path / "sys")).replace(
            "mkdir -p /var/lib/aihost", "true"
        )
    )
    box.stub("apt-get", 'echo "apt-get $*" >>"$LOG"')
    box.stub(
        "ubuntu-drivers",
        'echo "ubuntu-drivers $*" >>"$LOG"; echo "No drivers found for installation."; exit 0',
    )
    box.stub("dpkg-query", "exit 1")
    run = box.run("bin/aihost-install-driver")
    assert run.returncode == 1
    assert "installed no driver" in run.stderr
    assert (
        "ubuntu-drivers install --gpgpu nvidia:580-server-open"
        in (tmp_path / "calls.log").read_text()
    )


class _Ollama(BaseHTTPRequestHandler):
    ps: dict[str, Any] = {"models": []}

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        replies = {
            "/api/version": {"version": "0.32.15"},
            "/api/tags": {"models": [{"name": "qwen2.5:0.5b"}]},
            "/api/ps": self.ps,
        }
        self._send(200, replies.get(self.path, {}))

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/api/pull":
            self._send(500, {"error": "pull model manifest: file does not exist"})
        else:
            self._send(200, {"done": True})


@pytest.fixture
def ollama() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ollama)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_ollama_pull_failure_shows_ollamas_error(tmp_path: Path, ollama: int) -> None:
    box = sandbox(tmp_path, {"port": ollama, "models": ["nosuch:1b"]})
    script = (tmp_path / "bin/aihost-setup-runtime").read_text()
    (tmp_path / "bin/aihost-setup-runtime").write_text(
        script.replace("/etc/aihost/models", str(tmp_path / "models"))
    )
    (tmp_path / "models").write_text("nosuch:1b\n")
    run = box.run("bin/aihost-setup-runtime", "models")
    assert run.returncode == 1
    assert (
        "aihost: ollama could not pull nosuch:1b (HTTP 500): pull model manifest: "
        "file does not exist"
    ) in run.stderr


def test_health_fails_when_ollama_fell_back_to_the_cpu(tmp_path: Path, ollama: int) -> None:
    box = sandbox(tmp_path, {"port": ollama, "models": ["qwen2.5:0.5b"]})
    box.stub("nvidia-smi", 'echo "NVIDIA GeForce RTX 4090, 24564, 580.65.06"')
    _Ollama.ps = {"models": [{"name": "qwen2.5:0.5b", "size": 100, "size_vram": 40}]}
    run = box.run("bin/aihost-health")
    assert run.returncode == 1 and "CPU fallback" in run.stderr
    assert json.loads(run.stdout)["runtime"]["on_gpu"] is False
    _Ollama.ps = {"models": [{"name": "qwen2.5:0.5b", "size": 100, "size_vram": 100}]}
    run = box.run("bin/aihost-health")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["runtime"]["on_gpu"] is True


def test_vllm_without_a_gpu_is_refused_by_the_inventory_check() -> None:
    inv = inventory({"runtime": "vllm", "models": ["Qwen/Qwen2.5-0.5B"]}, gpu=False)
    with pytest.raises(InputError, match="runtime vllm needs a GPU") as caught:
        check_inventory(inv)
    assert caught.value.exit_code == 2


def test_health_reports_ollamas_context_and_its_servers_parallel(
    tmp_path: Path, ollama: int
) -> None:
    box = sandbox(tmp_path, {"port": ollama, "models": ["qwen2.5:0.5b"]}, gpu=False)
    _Ollama.ps = {
        "models": [{"name": "qwen2.5:0.5b", "size": 100, "size_vram": 0, "context_length": 16384}]
    }
    server = subprocess.Popen(["sleep", "30"], env={"OLLAMA_NUM_PARALLEL": "3"})
    try:  # `systemctl show -p MainPID --value ollama.service` names the running server
        box.stub("systemctl", f'[ "$1" = show ] && echo {server.pid}')
        run = box.run("bin/aihost-health")
    finally:
        server.kill()
        server.wait()
    assert run.returncode == 0, run.stderr
    runtime = json.loads(run.stdout)["runtime"]
    assert (runtime["context"], runtime["parallel"]) == (16384, 3)


class _Files(BaseHTTPRequestHandler):
    """llama-server's /health, /v1/models and /props (vLLM's /v1/models when vllm), and
    one GGUF file to download."""

    vllm = False

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        replies: dict[str, Any] = {
            "/health": {"status": "ok"},
            "/v1/models": {"data": [{"id": "m.gguf"}]},
            "/props": {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 3},
        }
        if self.vllm:
            replies["/v1/models"] = {"data": [{"id": "m", "max_model_len": 16384}]}
        if self.path == "/m.gguf":
            data = b"GGUF not really"
        elif self.path in replies:
            data = json.dumps(replies[self.path]).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def files_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_health_reports_llama_servers_slots_and_context_per_slot(
    tmp_path: Path, files_server: int
) -> None:
    box = sandbox(
        tmp_path,
        {
            "runtime": "llamacpp",
            "port": files_server,
            "models": [],
            "llamacpp": {"model_path": "/m.gguf"},
        },
        gpu=False,
    )
    run = box.run("bin/aihost-health")
    assert run.returncode == 0, run.stderr
    runtime = json.loads(run.stdout)["runtime"]
    assert (runtime["context"], runtime["parallel"]) == (4096, 3)


@pytest.mark.parametrize(
    ("path", "code", "error"),
    [
        (
            "/m.gguf",
            1,
            "aihost: the GGUF model from {url} has SHA-256 "
            "00a30ee0d2e0ee0f6c1650d56222ffa205c786a92cc687299ae3eeaf60a1a7a6, not the inventory's "
            + "0"
            * 64,
        ),
        ("/nosuch.gguf", 22, "curl: (22) The requested URL returned error: 404"),
    ],
)
def test_the_gguf_download_is_checked_as_the_simulated_guest_says(
    tmp_path: Path, files_server: int, path: str, code: int, error: str
) -> None:
    _need("sha256sum")
    url = f"http://127.0.0.1:{files_server}{path}"
    box = sandbox(
        tmp_path,
        {"runtime": "llamacpp", "models": [], "llamacpp": {"model_url": url, "sha256": "0" * 64}},
        gpu=False,
    )
    run = box.run("bin/aihost-setup-runtime", "models")
    assert run.returncode == code
    assert run.stderr.strip().splitlines()[-1] == error.format(url=url)
    assert not list((tmp_path / "aihost").rglob("*.gguf*"))  # nothing half-downloaded stays


def test_health_reports_vllms_max_model_len_and_the_max_num_seqs_it_runs_with(
    tmp_path: Path, files_server: int
) -> None:
    box = sandbox(
        tmp_path,
        {"runtime": "vllm", "port": files_server, "models": ["m"], "context": 16384, "parallel": 8},
    )
    _Files.vllm = True
    server = subprocess.Popen(
        ["python3", "-c", "import time; time.sleep(30)", "serve", "m", "--max-num-seqs", "8"]
    )
    try:  # `systemctl show -p MainPID --value vllm.service` names the running server
        box.stub("systemctl", f'[ "$1" = show ] && echo {server.pid}')
        run = box.run("bin/aihost-health")
    finally:
        _Files.vllm = False
        server.kill()
        server.wait()
    runtime = json.loads(run.stdout)["runtime"]  # no nvidia-smi here: exit 1, JSON all the same
    assert (runtime["context"], runtime["parallel"]) == (16384, 8)
