"""`aihost sim serve|reset|info`: the built-in simulated Proxmox VE."""

from __future__ import annotations

from pathlib import Path

import click

from provision.cli.context import CliContext


@click.group("sim")
def sim() -> None:
    """Run or reset the built-in simulated Proxmox (a model of a node, for trying aihost)."""


@sim.command("serve")
@click.option("--port", type=int, default=8006, show_default=True, help="HTTPS port (0: any).")
@click.option("--fixture", metavar="FILE|NAME", help="World to start from: default, two-node "
              "or a fixture YAML.")
@click.option("--state", type=click.Path(path_type=Path), help="State directory "
              "[default: the user's aihost state dir].")
@click.option("--sftp-port", type=int, default=0, show_default=True, help="SFTP port (0: any).")
@click.option("--no-sftp", is_flag=True, help="Run without the SFTP/SSH endpoint.")
@click.option("--guest", type=click.Choice(["model", "qemu"]), default="model",
              show_default=True, help="Who answers the guest agent: the guest model, or a "
              "real guest booted in QEMU per running VM (needs --guest-image).")
@click.option("--guest-image", type=click.Path(path_type=Path, file_okay=False),
              help="Image dir (vmlinuz, initrd, disk.img) of tests/guest_lane/build_image.sh.")
def serve(port: int, fixture: str | None, state: Path | None, sftp_port: int,
          no_sftp: bool, guest: str, guest_image: Path | None) -> None:
    """Serve the simulator in the foreground on 127.0.0.1 (HTTPS API plus SFTP) until Ctrl-C."""
    from provision.sim.cli_entry import resolve_fixture
    from provision.sim.cli_entry import serve as run

    if guest == "qemu" and guest_image is None:
        raise click.UsageError("--guest qemu needs --guest-image DIR")
    run(port=port, fixture=resolve_fixture(fixture), state_dir=state,
        sftp_port=None if no_sftp else sftp_port, echo=click.echo,
        guest_image=guest_image if guest == "qemu" else None)


@sim.command("reset")
@click.option("--state", type=click.Path(path_type=Path), help="State directory to clear.")
@click.pass_obj
def reset(obj: CliContext, state: Path | None) -> None:
    """Forget the simulated world (VMs, mappings, snippets); the next use starts afresh."""
    import shutil

    from provision.paths import sim_state_dir

    target = state or sim_state_dir()
    existed = target.exists()
    if existed:
        shutil.rmtree(target)
    obj.emit({"state": str(target), "cleared": existed},
             f"simulator state {'cleared' if existed else 'was already empty'}: {target}")
