"""Shell completion of inventory names (VMs, GPUs, hosts) for Click's completion scripts.

Completion runs without invoking any command callback, so the inventory path is taken
from the root command's parsed `-i` (or AIHOST_INVENTORY, or ./aihost.yaml) here.
A broken or missing inventory completes nothing rather than printing an error into the
user's shell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import click
from click.shell_completion import CompletionItem

from provision.cli.context import CliContext


def _inventory_names(ctx: click.Context, section: str) -> list[str]:
    path = ctx.find_root().params.get("inventory_path")
    try:
        inv = CliContext(inventory_path=path).load_inventory()
    except Exception:  # noqa: BLE001 - any inventory problem means "no suggestions"
        return []
    return sorted(getattr(inv, section))


def _completer(
    section: str,
) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    def complete(
        ctx: click.Context, _param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        names: Iterable[str] = _inventory_names(ctx, section)
        return [CompletionItem(name) for name in names if name.startswith(incomplete)]

    return complete


complete_vm = _completer("vms")
complete_gpu = _completer("gpus")
complete_host = _completer("hosts")
complete_recipe = _completer("bake")
