"""`aihost sim reset` while `aihost sim serve` runs: the running server resets its world
(through its control API) and keeps serving; once it has stopped, reset clears the files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
from aihost_testing import run_aihost

ROOT = Path(__file__).resolve().parents[2]


def _serve(state: Path) -> tuple[subprocess.Popen[str], str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provision",
            "sim",
            "serve",
            "--port",
            "0",
            "--no-sftp",
            "--state",
            str(state),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    url = token = ""
    for line in proc.stdout:
        if line.startswith("Proxmox VE simulator on "):
            url = line.split()[4]
        if "API token: " in line:
            parts = line.split()
            token = f"{parts[2]}={parts[4]}"
        if "control API" in line:
            break
    return proc, url, token


def test_reset_while_serving_resets_the_running_world(tmp_path):
    state = tmp_path / "sim"
    proc, url, token = _serve(state)
    try:
        cert = str(state / "tls" / "pve-ssl.pem")
        auth = {"Authorization": f"PVEAPIToken={token}"}
        first = requests.get(
            f"{url}/api2/json/cluster/resources", headers=auth, verify=cert, timeout=10
        )
        assert first.status_code == 200
        log = requests.get(f"{url}/_sim/requests", verify=cert, timeout=10).json()["data"]
        assert log

        result = run_aihost("-o", "json", "sim", "reset", "--state", str(state))
        assert result.exit_code == 0, result.stderr
        assert result.json()["server"]["pid"] == proc.pid

        assert requests.get(f"{url}/_sim/requests", verify=cert, timeout=10).json()["data"] == []
        again = requests.get(
            f"{url}/api2/json/cluster/resources", headers=auth, verify=cert, timeout=10
        )
        assert again.status_code == 200, again.text  # the server still works
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert not (state / "serving.json").exists()
    stopped = run_aihost("-o", "json", "sim", "reset", "--state", str(state))
    assert stopped.exit_code == 0 and stopped.json()["cleared"] is True
    assert not state.exists()
