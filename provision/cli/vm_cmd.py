"""`aihost vm plan|up|list|status|down|destroy`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from provision.cli.complete import complete_vm
from provision.cli.context import CliContext
from provision.cli.options import with_params
from provision.cli.types import VMID, seconds

if TYPE_CHECKING:
    from provision.vmops.session import Session


def _names(obj: CliContext, name: str | None, all_: bool) -> list[str]:
    from provision.errors import InputError

    inv = obj.load_inventory()
    if all_:
        if name:
            raise InputError("give a VM name or --all, not both")
        return sorted(inv.vms)
    if not name:
        raise InputError("name a VM, or use --all", hint=f"VMs: {', '.join(sorted(inv.vms))}")
    inv.vm(name)
    return [name]


def _session(obj: CliContext) -> Session:
    from provision.inventory.checks import check_inventory
    from provision.vmops.session import Session

    inv = obj.load_inventory()
    for warning in check_inventory(inv):
        obj.warn(warning)
    return Session(inv, progress=obj.progress, clock=obj.env.clock, events=obj.event)


@click.group("vm")
def vm() -> None:
    """Create, converge, verify and remove LLM VMs."""


@vm.command("plan")
@click.argument("name", required=False, shell_complete=complete_vm)
@click.option("--all", "all_", is_flag=True, help="Every VM in the inventory.")
@click.pass_obj
def plan(obj: CliContext, name: str | None, all_: bool) -> None:
    """Show what `vm up` would change (reads only)."""
    from provision.vmops.fleet import plan_vms

    session = _session(obj)
    states = plan_vms(session, _names(obj, name, all_))
    obj.emit([s.plan.to_json() for s in states], "\n".join(s.plan.to_text() for s in states))


UP_PARAMS = (
    click.argument("name", required=False, shell_complete=complete_vm),
    click.option("--all", "all_", is_flag=True, help="Every VM in the inventory, concurrently."),
    click.option("--no-wait", is_flag=True, help="Do not wait for the guest to prove it works."),
    click.option(
        "--agent-timeout",
        type=seconds(),
        default=900.0,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for the guest agent after start.",
    ),
    click.option(
        "--take-gpu",
        is_flag=True,
        help="If another VM holds the GPU, swap it over (stops that VM).",
    ),
    click.option("--force", is_flag=True, help="With --take-gpu: stop the holder hard if needed."),
    click.option(
        "--reprovision",
        is_flag=True,
        help="Make the guest redo its first boot with the current user-data.",
    ),
)


@vm.command("up")
@with_params(*UP_PARAMS)
@click.pass_obj
def up(
    obj: CliContext,
    name: str | None,
    all_: bool,
    no_wait: bool,
    agent_timeout: float,
    take_gpu: bool,
    force: bool,
    reprovision: bool,
) -> None:
    """Create or converge VMs, start them and verify GPU and runtime in the guest."""
    from provision.inventory.secrets import check_vm_secrets
    from provision.vmops.fleet import up_many
    from provision.vmops.outcome import UpOptions
    from provision.vmops.report import up_error, up_json, up_text

    names = _names(obj, name, all_)
    check_vm_secrets(obj.load_inventory(), names)
    session = _session(obj)
    outcomes = up_many(
        session,
        names,
        UpOptions(
            wait=not no_wait,
            agent_timeout=agent_timeout,
            take_gpu=take_gpu,
            force=force,
            reprovision=reprovision,
        ),
    )
    error = up_error(outcomes)
    if error is not None and len(outcomes) == 1:
        raise error
    data = up_json(outcomes)
    obj.emit(data if all_ else data[0], up_text(outcomes))
    if error is not None:
        # the per-VM results above are the JSON document, so no second one for this error
        error.reported = obj.json
        raise error from None


@vm.command("list")
@click.pass_obj
def list_(obj: CliContext) -> None:
    """Inventory VMs with their Proxmox status, node, vmid, GPU and runtime."""
    from provision.vmops.lifecycle import list_vms

    session = _session(obj)
    rows = list_vms(session, sorted(session.inv.vms))
    header = f"{'VM':<16} {'NODE':<8} {'VMID':>6} {'STATUS':<9} {'GPU':<10} {'RUNTIME':<9} ENDPOINT"
    text = [header] + [
        f"{r.vm:<16} {r.node:<8} {r.vmid or '-':>6} {r.status:<9} {','.join(r.gpu) or '-':<10} "
        f"{r.runtime:<9} {r.endpoint or '-'}"
        for r in rows
    ]
    obj.emit([r.to_json() for r in rows], "\n".join(text))


@vm.command("status")
@click.argument("name", shell_complete=complete_vm)
@click.pass_obj
def status(obj: CliContext, name: str) -> None:
    """One VM's Proxmox status."""
    from provision.vmops.lifecycle import list_vms

    session = _session(obj)
    obj.load_inventory().vm(name)
    row = list_vms(session, [name], ask_guest=True)[0]
    shown = {k: ", ".join(v) if isinstance(v, list) else v for k, v in row.to_json().items()}
    obj.emit(
        row.to_json(),
        "\n".join(f"{k + ':':<9} {'-' if v in (None, '') else v}" for k, v in shown.items()),
    )


@vm.command("down")
@click.argument("name", shell_complete=complete_vm)
@click.option("--force", is_flag=True, help="Stop hard instead of a guest shutdown.")
@click.option("--timeout", type=seconds(), default=120.0, show_default=True, metavar="SECONDS")
@click.pass_obj
def down(obj: CliContext, name: str, force: bool, timeout: float) -> None:
    """Shut a VM down (guest agent or ACPI, bounded); --force stops it."""
    from provision.vmops.lifecycle import stop_vm

    obj.load_inventory().vm(name)
    outcome = stop_vm(_session(obj), name, force=force, timeout=timeout)
    obj.emit({"vm": name, "result": outcome}, f"{name}: {outcome}")


@vm.command("destroy")
@click.argument("name", shell_complete=complete_vm)
@click.option("--yes", is_flag=True, help="Really destroy (required).")
@click.pass_obj
def destroy(obj: CliContext, name: str, yes: bool) -> None:
    """Remove a VM aihost manages (tagged 'aihost'), its disks and its snippets."""
    from provision.errors import InputError
    from provision.vmops.lifecycle import destroy_vm

    obj.load_inventory().vm(name)
    if not yes:
        raise InputError(f"destroying '{name}' deletes its disks; add --yes to confirm")
    result = destroy_vm(_session(obj), name)
    obj.emit(result, f"{name}: destroyed VM {result['vmid']}")


@vm.command("adopt")
@click.argument("name", shell_complete=complete_vm)
@click.option("--vmid", type=VMID, required=True, help="The existing VM to take over.")
@click.option("--yes", is_flag=True, help="Tag it without asking.")
@click.pass_obj
def adopt(obj: CliContext, name: str, vmid: int, yes: bool) -> None:
    """Take a hand-made VM under management: show the diff, tag it 'aihost' after confirming."""
    from provision.errors import InputError
    from provision.vmops.adopt import adopt as adopt_vm

    def confirm(diff: dict[str, Any]) -> bool:
        lines = [f"VM {vmid} ('{diff['current_name']}', {diff['status']}) vs inventory {name}:"]
        lines += [f"  {d['key']}: {d['now']} -> {d['inventory']}" for d in diff["differences"]]
        if not diff["differences"]:
            lines.append("  no differences")
        obj.progress("\n".join(lines))
        # nobody at stdin to ask: tagging needs --yes
        return yes or obj.confirm("tag it 'aihost' so aihost manages it?")

    result = adopt_vm(_session(obj), name, vmid, confirm)
    if not result["adopted"] and not obj.interactive:
        raise InputError(
            f"VM {vmid} not adopted: nothing was changed",
            hint=f"review the differences above, then `aihost vm adopt {name} --vmid {vmid} --yes`",
        )
    result.pop("digest", None)
    word = "adopted" if result["adopted"] else "not adopted"
    obj.emit(
        result,
        f"{name}: VM {vmid} {word}"
        + (
            "; run `aihost vm plan` to see the changes `vm up` will make"
            if result["adopted"]
            else ""
        ),
    )
