"""`aihost gpu list|map|swap|release|recover`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from provision.cli.complete import complete_gpu, complete_vm
from provision.cli.context import CliContext
from provision.cli.types import PciAddress, seconds

if TYPE_CHECKING:
    from provision.vmops.session import Session


def _session(obj: CliContext) -> Session:
    from provision.vmops.session import Session

    return Session(
        obj.load_inventory(), progress=obj.progress, clock=obj.env.clock, events=obj.event
    )


def _verifier(
    session: Session, gpu_name: str, target: str, agent_timeout: float
) -> Callable[[int], None]:
    """nvidia-smi in the target guest through its agent (the check `vm up` makes)."""
    from provision.guest.verify import verify_vm

    def verify(vmid: int) -> None:
        verify_vm(
            session, target, vmid, agent_timeout=agent_timeout, expect_gpu=True, label=gpu_name
        )

    return verify


@click.group("gpu")
def gpu() -> None:
    """List, map, swap and release GPUs (one holder each)."""


@gpu.command("list")
@click.pass_obj
def list_(obj: CliContext) -> None:
    """Every GPU: node, device, VRAM, the VM holding it (from Proxmox), swaps under way."""
    from provision.gpu.listing import format_rows, list_gpus

    rows = list_gpus(_session(obj))
    obj.emit([r.to_json() for r in rows], format_rows(rows))


@gpu.command("map")
@click.argument("name", shell_complete=complete_gpu)
@click.option("--pci", type=PciAddress(), help="The card's address, e.g. 0000:01:00.")
@click.option(
    "--force",
    is_flag=True,
    help="Map a card that is not the inventory's model or that another mapping names.",
)
@click.pass_obj
def map_(obj: CliContext, name: str, pci: str | None, force: bool) -> None:
    """Create or update the cluster PCI mapping from the node's hardware listing."""
    from provision.gpu.context import GpuContext
    from provision.gpu.mapping import map_gpu

    result = map_gpu(GpuContext(_session(obj), name), pci, force=force)
    obj.emit(result, f"{name}: mapping {result['mapping']} {result['action']} ({result['map']})")


def _swap(
    obj: CliContext,
    name: str,
    to: str | None,
    force: bool,
    timeout: float,
    wait: bool,
    no_verify: bool,
    agent_timeout: float,
) -> None:
    from provision.gpu.context import GpuContext
    from provision.gpu.swap import SwapOptions, swap_gpu

    session = _session(obj)
    ctx = GpuContext(session, name)
    verify = _verifier(session, name, to, agent_timeout) if to and not no_verify else None
    result = swap_gpu(
        ctx,
        to,
        SwapOptions(
            force=force,
            shutdown_timeout=timeout,
            wait=wait,
            verify=not no_verify,
            agent_timeout=agent_timeout,
        ),
        verify_gpu=verify,
    )
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    text = f"{name}: {result.outcome} ({result.source or '-'} -> {result.target or '-'})"
    obj.emit(result.to_json(), text + (f"; {timings}" if timings else ""))


@gpu.command("swap")
@click.argument("name", shell_complete=complete_gpu)
@click.option(
    "--to",
    "to",
    required=True,
    metavar="VM",
    shell_complete=complete_vm,
    help="The VM that gets the GPU.",
)
@click.option("--force", is_flag=True, help="Stop the holder hard if it does not shut down.")
@click.option(
    "--timeout", type=seconds(), default=120.0, show_default=True, help="Shutdown timeout (s)."
)
@click.option("--wait", is_flag=True, help="Wait for a swap in progress instead of failing.")
@click.option("--no-verify", is_flag=True, help="Skip nvidia-smi in the target guest.")
@click.option("--agent-timeout", type=seconds(), default=600.0, show_default=True)
@click.pass_obj
def swap(
    obj: CliContext,
    name: str,
    to: str,
    force: bool,
    timeout: float,
    wait: bool,
    no_verify: bool,
    agent_timeout: float,
) -> None:
    """Move the GPU to VM: stop holder, detach, attach, start, verify; roll back on failure."""
    _swap(obj, name, to, force, timeout, wait, no_verify, agent_timeout)


@gpu.command("release")
@click.argument("name", shell_complete=complete_gpu)
@click.option("--force", is_flag=True, help="Stop the holder hard if it does not shut down.")
@click.option(
    "--timeout", type=seconds(), default=120.0, show_default=True, help="Shutdown timeout (s)."
)
@click.option("--wait", is_flag=True, help="Wait for a swap in progress instead of failing.")
@click.pass_obj
def release(obj: CliContext, name: str, force: bool, timeout: float, wait: bool) -> None:
    """Stop the holder and detach the GPU without attaching it elsewhere."""
    _swap(obj, name, None, force, timeout, wait, True, 0)


@gpu.command("recover")
@click.argument("name", shell_complete=complete_gpu)
@click.pass_obj
def recover(obj: CliContext, name: str) -> None:
    """Finish or roll back a swap that was interrupted (crash, kill, lost connection)."""
    from provision.gpu.context import GpuContext
    from provision.gpu.recovery import recover as recover_op

    outcome = recover_op(GpuContext(_session(obj), name)) or "nothing to recover"
    obj.emit({"gpu": name, "result": outcome}, f"{name}: {outcome}")
