"""`aihost host check [HOST]`."""

from __future__ import annotations

from typing import Any

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
    from provision.errors import PreflightError
    from provision.gpu.preflight import check_host
    from provision.vmops.session import Session

    inv = obj.load_inventory()
    names = [name] if name else sorted(inv.hosts)
    if name:
        inv.host(name)
    session = Session(inv, progress=obj.progress, clock=obj.env.clock)
    reports = [check_host(session, host_name) for host_name in names]
    from provision.preflight.run import host_preflight

    gaps, notes = host_preflight(session, names)
    hosts_ok = all(r.ok for r in reports)
    result = {
        "ok": hosts_ok and not gaps,
        "hosts": [r.to_json() for r in reports],
        "vms": {"ok": not gaps, "problems": gaps, "notes": notes},
    }
    obj.emit(result, _text(reports, gaps, notes))
    failed = [r.host for r in reports if not r.ok]
    error = None
    if failed:
        error = PreflightError(f"passthrough cannot work yet on {', '.join(failed)} "
                               "(see the fixes above)")
    elif gaps:
        error = PreflightError("the hosts are ready, but the inventory's VMs cannot be applied "
                               "yet (see 'VM readiness' above)")
    if error is not None:
        error.reported = obj.json  # the report above is the JSON result
        raise error


def _text(reports: list[Any], gaps: list[str], notes: list[str]) -> str:
    """Host sections, then the VM readiness section; each headline states its verdict."""
    lines = []
    for report in reports:
        lines.append(f"{report.host} (node {report.node}): {'OK' if report.ok else 'NOT READY'}")
        for f in report.findings:
            lines.append(f"  [{'ok' if f.ok else 'FAIL'}] {f.check}: {f.detail}")
            if f.fix and not f.ok:
                lines.append(f"         fix: {f.fix}")
    lines.append(f"VM readiness: {'NOT READY' if gaps else 'OK'}")
    lines += [f"  {gap}" for gap in gaps]
    lines += [f"  note: {note}" for note in notes]
    return "\n".join(lines)
