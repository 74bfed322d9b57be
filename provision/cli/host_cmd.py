"""`aihost host check [HOST]`."""

from __future__ import annotations

import click

from provision.cli.complete import complete_host
from provision.cli.context import CliContext


@click.group("host")
def host() -> None:
    """Check a Proxmox host is ready for passthrough."""


@host.command("check")
@click.argument("name", required=False, shell_complete=complete_host)
@click.pass_obj
def check(obj: CliContext, name: str | None) -> None:
    """IOMMU, the GPU and its group, the mapping, host drivers; exit 2 if passthrough can't work."""
    from provision.preflight.readiness import host_readiness
    from provision.vmops.session import Session

    inv = obj.load_inventory()
    names = [name] if name else sorted(inv.hosts)
    if name:
        inv.host(name)
    session = Session(inv, progress=obj.progress, clock=obj.env.clock)
    readiness = host_readiness(session, names)
    obj.emit(readiness.to_json(), readiness.to_text())
    error = readiness.error()
    if error is not None:
        error.reported = obj.json  # the report above is the JSON result
        raise error
