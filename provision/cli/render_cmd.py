"""`aihost render NAME`: print the cloud-init user-data of a VM (secrets masked)."""

from __future__ import annotations

import click

from provision.cli.complete import complete_vm
from provision.cli.context import CliContext

DISTROS = ("ubuntu-24.04", "ubuntu-22.04", "debian-12")


@click.command("render")
@click.argument("name", shell_complete=complete_vm)
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
    """Print the #cloud-config user-data that `vm up` would give VM NAME.

    The masked view needs no secret: when one cannot be read, it is shown as '***' and
    the document's sha256 (which depends on the secrets) is left out.
    """
    from provision.cloudinit.render import MASK, render_user_data
    from provision.errors import InputError

    inv = obj.load_inventory()
    vm = inv.vm(name)
    sha256: str | None
    try:
        rendered = render_user_data(inv, name, distro=distro)
        text = rendered.text if show_secrets else rendered.masked()
        sha256 = rendered.sha256
    except InputError:
        if show_secrets:
            raise
        masked = render_user_data(inv, name, distro=distro, secret_reader=lambda _r, _w: MASK)
        text, sha256 = masked.text, None
        obj.warn("a secret could not be read: shown as '***' (--show-secrets needs it)")
    obj.emit({"vm": name, "distro": distro or vm.distro, "sha256": sha256, "user_data": text}, text)
