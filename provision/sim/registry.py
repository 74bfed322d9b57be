"""The simulators this process runs: one per (state directory, fixture), started on first
use and stopped at exit. provision.pve.connect asks here for the server of an `api: sim`
host; `aihost sim reset` and the tests stop them with stop_sim_servers."""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from provision.sim.state import private_dir

if TYPE_CHECKING:  # the server (the whole simulated API) is imported when one starts:
    # every client imports this module through provision.pve.connect, few run a simulator
    from provision.sim.server import SimServer

_LOCK = threading.Lock()
_SERVERS: dict[tuple[str, str], SimServer] = {}


def sim_server(
    state_dir: Path, fixture: Path | None = None, *, progress: Callable[[str], None] | None = None
) -> SimServer:
    """The running simulator for state_dir and fixture (started on first use)."""
    key = (str(state_dir.resolve()), str(fixture or ""))
    with _LOCK:
        server = _SERVERS.get(key)
        if server is None:
            if progress:
                progress(f"starting the built-in Proxmox simulator (state in {state_dir})")
            private_dir(state_dir)  # owner-only: the world holds secrets
            from provision.sim import server as sim_server_module

            # looked up at call time, so a test may replace the class
            server = sim_server_module.SimServer(state_dir=state_dir, fixture=fixture).start()
            _SERVERS[key] = server
        return server


def stop_sim_servers() -> None:
    """Stop every simulator this process started (also run at exit)."""
    with _LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for server in servers:
        with contextlib.suppress(Exception):  # shutting down: nothing left to report to
            server.stop()


atexit.register(stop_sim_servers)
