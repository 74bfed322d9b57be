"""`aihost render NAME`: print the cloud-init user-data of a VM (secrets masked)."""

from __future__ import annotations

import click

from provision.cli.context import CliContext

DISTROS = ("ubuntu-24.04", "ubuntu-22.04", "debian-12")


@click.command("render")
@click.argument("name")
@click.option(
    "--distro",
    type=click.Choice(DISTROS),
    default=None,
    help="Render for this guest distro instead of the inventory's.",
)
@click.option(
    "--show-secrets",
    is_flag=True,
    help="Print passwords and tokens as the guest gets them (default: '***').",
)
@click.pass_obj
def render(obj: CliContext, name: str, distro: str | None, show_secrets: bool) -> None:
    """Print the #cloud-config user-data that `vm up` would give VM NAME."""
    from provision.cloudinit.render import render_user_data

    inv = obj.load_inventory()
    vm = inv.vm(name)
    rendered = render_user_data(inv, name, distro=distro)
    text = rendered.text if show_secrets else rendered.masked()
    obj.emit(
        {"vm": name, "distro": distro or vm.distro, "sha256": rendered.sha256, "user_data": text},
        text,
    )
