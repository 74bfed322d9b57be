"""End-to-end fixtures: a simulated Proxmox over real HTTPS + SFTP, and inventories for it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aihost_testing import schema_validator

PVESTATD_NEVER = 1e9  # seconds between pvestatd broadcasts: none after the first


@dataclass
class Sim:
    """A running simulator and what a client needs to reach it."""

    server: Any
    state_dir: Path
    known_hosts: Path
    token_file: Path

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The request log (optionally only entries after index since)."""
        return self.server.request_log()[since:]

    def writes(self, since: int = 0) -> list[dict[str, Any]]:
        """Requests other than GET in the log."""
        return [
            r for r in self.requests(since) if r["method"] != "GET" and "/agent/" not in r["path"]
        ]

    def control(self, what: str, payload: Any = None) -> Any:
        """POST to the simulator's control API (faults, durations)."""
        import requests

        response = requests.post(
            f"{self.server.url}/_sim/{what}",
            json=payload,
            verify=str(self.server.cert_path),
            timeout=10,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def inventory(
        self,
        path: Path,
        vms: dict[str, Any],
        *,
        gpus: dict[str, Any] | None = None,
        host: dict[str, Any] | None = None,
    ) -> Path:
        """Write an inventory that talks to this simulator over HTTPS + SFTP."""
        server = self.server
        entry: dict[str, Any] = {
            "api": server.url,
            "token": {"id": server.token_id, "secret_file": str(self.token_file)},
            "tls": {"fingerprint": server.fingerprint},
            "ssh": {
                "user": "root",
                "host": "127.0.0.1",
                "port": server.sftp_port,
                "key": str(server.client_key_path),
                "known_hosts": str(self.known_hosts),
            },
        }
        entry.update(host or {})
        entry = {k: v for k, v in entry.items() if v is not None}
        data = {
            "hosts": {"pve1": entry},
            "gpus": gpus
            if gpus is not None
            else {
                "rtx4090": {"host": "pve1", "mapping": "rtx4090", "vram_gb": 24},
                "rtx3060": {"host": "pve1", "mapping": "rtx3060", "vram_gb": 12},
            },
            "defaults": {
                "vm": {
                    "host": "pve1",
                    "template": "ubuntu-2404-cloud",
                    "cores": 4,
                    "memory_gb": 16,
                    "disk_gb": 40,
                }
            },
            "vms": vms,
        }
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


@contextlib.contextmanager
def _running(state: Path, fixture: Path | None = None, token: str | None = None) -> Iterator[Sim]:
    """pvestatd broadcasts once, at the start, and never again during a test: as on a real
    node within its 10 s cycle, /cluster/resources shows no name and status "unknown"
    for every VM a test makes, and old names and states for VMs it changes."""
    from provision.sim.server import SimServer

    server = SimServer(
        state, fixture, durations={"pvestatd": PVESTATD_NEVER}, validator=schema_validator()
    ).start()
    known_hosts = state / "known_hosts"
    known_hosts.write_text(server.known_hosts_line() + "\n")
    token_file = state / "token"
    token_file.write_text((server.secret_for(token) if token else server.token_secret) + "\n")
    try:
        yield Sim(server, state, known_hosts, token_file)
    finally:
        violations = server.violations()
        server.stop()
        assert not violations, f"the simulator saw invalid requests: {violations}"


@pytest.fixture
def sim(tmp_path_factory) -> Iterator[Sim]:
    """A fresh simulated Proxmox (default fixture, zero task durations, schema-checked)."""
    with _running(tmp_path_factory.mktemp("sim")) as made:
        yield made


@pytest.fixture
def sim_from(tmp_path_factory) -> Iterator[Callable[..., Sim]]:
    """Start a simulator from a fixture file (token_file holds `token`'s secret if given)."""
    with contextlib.ExitStack() as stack:
        yield lambda fixture, token=None: stack.enter_context(
            _running(tmp_path_factory.mktemp("sim"), fixture, token)
        )


@pytest.fixture
def fast_demo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The demo's built-in simulator (`api: sim`) with task durations and boot delay at
    zero; every simulator the test started is stopped afterwards."""
    from provision.sim import server as sim_server
    from provision.sim.registry import stop_sim_servers

    class FastSim(sim_server.SimServer):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            kwargs.setdefault("durations", {})  # {}: every task and the boot take 0 s
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sim_server, "SimServer", FastSim)
    yield
    stop_sim_servers()
