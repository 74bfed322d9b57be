"""`aihost sim serve` and `python -m provision.sim`: run the simulator in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from provision.sim.fixture import DEFAULT_FIXTURE


def resolve_fixture(name: str | None) -> Path | None:
    """A fixture file path, or the name of a shipped fixture ("default", "two-node")."""
    if not name:
        return None
    path = Path(name)
    if path.is_file():
        return path
    shipped = DEFAULT_FIXTURE.parent / (name if name.endswith(".yaml") else f"{name}.yaml")
    if shipped.is_file():
        return shipped
    known = ", ".join(sorted(p.stem for p in DEFAULT_FIXTURE.parent.glob("*.yaml")))
    raise SystemExit(f"fixture '{name}' is neither a file nor a shipped fixture ({known})")


def _echo(line: str) -> None:
    print(line, flush=True)


def serve(
    *,
    port: int = 8006,
    fixture: Path | None = None,
    state_dir: Path | None = None,
    sftp_port: int | None = 0,
    echo: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    guest_image: Path | None = None,
) -> int:
    """Start a SimServer, print how to reach it, serve until stop is set (or Ctrl-C)."""
    from provision.sim.server import SimServer

    if state_dir is None:
        from provision.paths import sim_state_dir

        state_dir = sim_state_dir()
    if echo is None:
        echo = _echo
    server = SimServer(Path(state_dir), fixture, port=port, sftp_port=sftp_port).start()
    marker = write_serving_marker(Path(state_dir), server.url)
    if guest_image is not None:
        from provision.sim import qemu_bridge

        qemu_bridge.register(Path(state_dir), guest_image, Path(state_dir) / "qemu")
        echo(f"  guest agent: real QEMU guests from {guest_image}")
    echo(f"Proxmox VE simulator on {server.url} (state in {state_dir})")
    echo(f"  TLS fingerprint (SHA-256): {server.fingerprint}")
    echo(f"  certificate: {server.cert_path}")
    echo(f"  API token: {server.token_id}  secret: {server.token_secret}")
    if server.sftp_port is not None:
        echo(f"  SFTP/SSH: root@127.0.0.1 port {server.sftp_port}, key {server.client_key_path}")
    echo(f"  control API: {server.url}/_sim/requests, /_sim/faults, /_sim/reset")
    waiter = stop or threading.Event()
    if stop is None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda _sig, _frame: waiter.set())
    try:
        while not waiter.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        marker.unlink(missing_ok=True)
        server.stop()
        if guest_image is not None:
            from provision.sim import qemu_bridge

            qemu_bridge.unregister(Path(state_dir))
    return 0


SERVING_MARKER = "serving.json"


def write_serving_marker(state_dir: Path, url: str) -> Path:
    """Record that this process serves state_dir (so `aihost sim reset` can reach it)."""
    import json
    import os

    marker = state_dir / SERVING_MARKER
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"pid": os.getpid(), "url": url}, out)
    return marker


def running_server(state_dir: Path) -> dict[str, object] | None:
    """{pid, url} of a live `sim serve` process on state_dir, or None (stale markers too)."""
    import json
    import os

    try:
        info = json.loads((state_dir / SERVING_MARKER).read_text())
        pid = int(info["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"pid": pid, "url": str(info["url"])}


def serve_forever(argv: list[str] | None = None) -> int:
    """Parse `[--port N] [--fixture FILE|NAME] [--state DIR] [--sftp-port N] [--no-sftp]`
    and serve in the foreground until interrupted; returns the exit status."""
    parser = argparse.ArgumentParser(prog="aihost sim serve", description=__doc__)
    parser.add_argument("--port", type=int, default=8006, help="HTTPS port (0: any free one)")
    parser.add_argument("--fixture", help="fixture YAML or shipped name (default, two-node)")
    parser.add_argument("--state", type=Path, help="state directory (default: user state dir)")
    parser.add_argument("--sftp-port", type=int, default=0, help="SFTP port (0: any free one)")
    parser.add_argument("--no-sftp", action="store_true", help="run without the SFTP endpoint")
    args = parser.parse_args(argv)
    return serve(
        port=args.port,
        fixture=resolve_fixture(args.fixture),
        state_dir=args.state,
        sftp_port=None if args.no_sftp else args.sftp_port,
    )
