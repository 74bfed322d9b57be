"""`aihost sim serve|reset|info`: the built-in simulated Proxmox VE."""

from __future__ import annotations

from pathlib import Path

import click

from provision.cli import collector
from provision.cli.context import CliContext
from provision.cli.options import with_params
from provision.cli.types import PORT_OR_ANY, FixtureParam


@click.group("sim")
def sim() -> None:
    """Run or reset the built-in simulated Proxmox (a model of a node, for trying aihost)."""


SERVE_PARAMS = (
    click.option(
        "--port", type=PORT_OR_ANY, default=8006, show_default=True, help="HTTPS port (0: any)."
    ),
    click.option(
        "--fixture",
        type=FixtureParam(),
        help="World to start from: default, two-node or a fixture YAML.",
    ),
    click.option(
        "--state",
        type=click.Path(path_type=Path, file_okay=False),
        help="State directory [default: the user's aihost state dir].",
    ),
    click.option(
        "--sftp-port", type=PORT_OR_ANY, default=0, show_default=True, help="SFTP port (0: any)."
    ),
    click.option("--no-sftp", is_flag=True, help="Run without the SFTP/SSH endpoint."),
    click.option(
        "--guest",
        type=click.Choice(["model", "qemu"]),
        default="model",
        show_default=True,
        help="Who answers the guest agent: the guest model, or a "
        "real guest booted in QEMU per running VM (needs --guest-image).",
    ),
    click.option(
        "--guest-image",
        type=click.Path(path_type=Path, file_okay=False),
        help="Image dir (vmlinuz, initrd, disk.img) of tests/guest_lane/build_image.sh.",
    ),
)


@sim.command("serve")
@with_params(*SERVE_PARAMS)
@click.pass_obj
def serve(
    obj: CliContext,
    port: int,
    fixture: Path | None,
    state: Path | None,
    sftp_port: int,
    no_sftp: bool,
    guest: str,
    guest_image: Path | None,
) -> None:
    """Serve the simulator in the foreground on 127.0.0.1 (HTTPS API plus SFTP) until Ctrl-C."""
    from provision.sim.cli_entry import serve as run

    if guest == "qemu" and guest_image is None:
        raise click.UsageError("--guest qemu needs --guest-image DIR")
    _port_free(port, "--port")
    if not no_sftp:
        _port_free(sftp_port, "--sftp-port")
    collector.resume()  # a server runs until Ctrl-C (provision.cli.collector)
    try:
        run(
            port=port,
            fixture=fixture,
            state_dir=state,
            sftp_port=None if no_sftp else sftp_port,
            echo=obj.say,
            guest_image=guest_image if guest == "qemu" else None,
        )
    except OSError as exc:  # a port taken between the check and the bind
        raise click.UsageError(f"cannot listen on 127.0.0.1: {exc.strerror or exc}") from None


def _port_free(port: int, option: str) -> None:
    """Usage error naming option when 127.0.0.1:port is taken (0 means any free port)."""
    import socket

    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError as exc:
        raise click.BadParameter(
            f"127.0.0.1:{port} cannot be used ({exc.strerror}); pick another port or 0 for "
            "any free one",
            param_hint=f"'{option}'",
        ) from None
    finally:
        probe.close()


@sim.command("reset")
@click.option(
    "--state", type=click.Path(path_type=Path, file_okay=False), help="State directory to clear."
)
@click.pass_obj
def reset(obj: CliContext, state: Path | None) -> None:
    """Forget the simulated world (VMs, mappings, snippets); the next use starts afresh.

    When `aihost sim serve` is running on that state, the running server resets its
    world through its control API (removing its files under it would break it).
    """
    import shutil

    from provision.paths import sim_state_dir
    from provision.sim.cli_entry import running_server

    target = state or sim_state_dir()
    server = running_server(target)
    if server is not None:
        _reset_running(target, str(server["url"]))
        obj.emit(
            {"state": str(target), "cleared": True, "server": server},
            f"simulator world reset by the running server (pid {server['pid']}, {server['url']})",
        )
        return
    existed = target.exists()
    if existed:
        shutil.rmtree(target)
    obj.emit(
        {"state": str(target), "cleared": existed},
        f"simulator state {'cleared' if existed else 'was already empty'}: {target}",
    )


def _reset_running(state: Path, url: str) -> None:
    import requests

    from provision.errors import ApiError

    try:
        reply = requests.post(
            f"{url}/_sim/reset", verify=str(state / "tls" / "pve-ssl.pem"), timeout=30
        )
    except requests.RequestException as exc:
        raise ApiError(
            f"the running simulator at {url} did not answer the reset: {exc}",
            hint="stop `aihost sim serve` (Ctrl-C), then run `aihost sim reset`",
        ) from exc
    if reply.status_code != 200:
        raise ApiError(
            f"the running simulator at {url} refused the reset: HTTP {reply.status_code}"
        )
