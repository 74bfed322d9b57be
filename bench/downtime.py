"""Measure a GPU swap's downtime on the simulator: `python -m bench.downtime`.

Starts a private simulator (HTTPS, in a temporary directory) with the given task
durations, brings up llm-box holding the GPU and image-box running without it, swaps
the GPU to image-box through the CLI, and prints the swap's step timings and the
request sequence the simulator logged (as Markdown).
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

GPU = "rtx4090"


def _run(*args: str) -> tuple[int, str, str]:
    from provision.cli.environment import Environment
    from provision.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), env=Environment(stdout=out, stderr=err, stdin_isatty=False))
    return code, out.getvalue(), err.getvalue()


def _must(*args: str) -> str:
    code, out, err = _run(*args)
    if code != 0:
        raise SystemExit(f"aihost {' '.join(args)} failed ({code}): {err}")
    return out


def _inventory(server: Any, state: Path, image_gpu: bool) -> Path:
    token = state / "token"
    token.write_text(server.token_secret + "\n")
    known_hosts = state / "known_hosts"
    known_hosts.write_text(server.known_hosts_line() + "\n")
    vm = {"runtime": "none", "gpu": GPU}
    data = {
        "hosts": {
            "pve1": {
                "api": server.url,
                "tls": {"fingerprint": server.fingerprint},
                "token": {"id": server.token_id, "secret_file": str(token)},
                "ssh": {
                    "user": "root",
                    "host": "127.0.0.1",
                    "port": server.sftp_port,
                    "key": str(server.client_key_path),
                    "known_hosts": str(known_hosts),
                },
            }
        },
        "gpus": {GPU: {"host": "pve1", "mapping": GPU, "vram_gb": 24}},
        "defaults": {"vm": {"host": "pve1", "template": "ubuntu-2404-cloud"}},
        "vms": {"llm-box": vm, "image-box": vm if image_gpu else {"runtime": "none"}},
    }
    path = state / "inv.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _start(server: Any, name: str) -> None:
    """Start a VM through the API (no `vm start` command: vm up would re-attach the GPU)."""
    import requests

    headers = {"Authorization": f"PVEAPIToken={server.token_id}={server.token_secret}"}
    base, verify = f"{server.url}/api2/json", str(server.cert_path)
    rows = requests.get(  # live: /cluster/resources names lag up to pvestatd's 10 s
        f"{base}/nodes/pve1/qemu", headers=headers, verify=verify, timeout=10
    ).json()["data"]
    vmid = next(r["vmid"] for r in rows if r.get("name") == name)
    requests.post(
        f"{base}/nodes/pve1/qemu/{vmid}/status/start", headers=headers, verify=verify, timeout=10
    ).raise_for_status()


def measure(durations: dict[str, float]) -> dict[str, Any]:
    """Timings of one swap under durations, and the requests it made (method, path)."""
    from provision.sim.server import SimServer

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        server = SimServer(state, durations={}).start()
        try:
            inv = str(_inventory(server, state, image_gpu=True))
            _must("-i", inv, "vm", "up", "image-box", "--no-wait")
            _must("-i", inv, "gpu", "release", GPU)
            _must("-i", inv, "vm", "up", "llm-box", "--no-wait")
            _start(server, "image-box")
            with server.app.store.transaction() as world:
                world.setdefault("duration_overrides", {}).update(durations)
            since = len(server.request_log())
            out = _must("-i", inv, "-o", "json", "gpu", "swap", GPU, "--to", "image-box")
            log = server.request_log(since)
            violations = server.violations()
        finally:
            server.stop()
    result = json.loads(out)
    return {
        "timings": result["timings"],
        "violations": violations,
        "requests": [(r["method"], r["path"].removeprefix("/api2/json")) for r in log],
    }


def to_markdown(durations: dict[str, float], data: dict[str, Any]) -> str:
    """The breakdown table and the request sequence."""
    t = data["timings"]
    lines = ["| step | seconds |", "|---|---:|"]
    for key in ("plan", "stop", "config", "start", "verify", "lease", "total"):
        lines.append(f"| {key} | {t.get(key, 0.0):.2f} |")
    lines += [
        "",
        f"Simulated task durations: `{json.dumps(durations)}`; "
        f"GPU-invariant violations: {len(data['violations'])}.",
        "",
        "```",
    ]
    rows: list[list[Any]] = []
    for method, path in data["requests"]:
        if rows and rows[-1][:2] == [method, path]:
            rows[-1][2] += 1
        else:
            rows.append([method, path, 1])
    lines += [f"{m:<4} {p}" + (f"  (x{n}, polling)" if n > 1 else "") for m, p, n in rows]
    lines.append("```")
    return "\n".join(lines)


def main() -> None:
    """Command line: task durations in seconds, a scale, print Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shutdown", type=float, default=4.0)
    parser.add_argument("--start", type=float, default=3.0)
    parser.add_argument("--boot", type=float, default=0.0)
    parser.add_argument("--scale", type=float, default=0.25)
    args = parser.parse_args()
    durations = {
        "qmshutdown": args.shutdown * args.scale,
        "qmstart": args.start * args.scale,
        "boot": args.boot * args.scale,
    }
    print(to_markdown(durations, measure(durations)))


if __name__ == "__main__":
    main()
