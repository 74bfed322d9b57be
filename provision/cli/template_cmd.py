"""`aihost template bake NAME`."""

from __future__ import annotations

import click

from provision.cli.complete import complete_recipe
from provision.cli.context import CliContext
from provision.cli.types import seconds


@click.group("template")
def template() -> None:
    """Bake GPU-ready Proxmox templates from the inventory's `bake:` recipes."""


@template.command("bake")
@click.argument("name", shell_complete=complete_recipe)
@click.option(
    "--timeout",
    type=seconds(),
    default=7200.0,
    show_default=True,
    metavar="SECONDS",
    help="How long the bake VM may take to install and power itself off.",
)
@click.pass_obj
def bake(obj: CliContext, name: str, timeout: float) -> None:
    """Bake recipe NAME into a template (driver, CUDA, runtime), unless it is current."""
    from provision.cloudinit.bake import recipe_of
    from provision.vmops.bake import bake_template
    from provision.vmops.session import Session

    inv = obj.load_inventory()
    recipe_of(inv, name)
    session = Session(inv, progress=obj.progress, clock=obj.env.clock)
    outcome = bake_template(session, name, timeout=timeout)
    obj.emit(outcome.to_json(), outcome.to_text())
