"""`aihost inventory check|show|schema`."""

from __future__ import annotations

import json

import click

from provision.cli.context import CliContext


@click.group("inventory")
def inventory() -> None:
    """Validate and show the inventory (the user's source of truth)."""


@inventory.command("check")
@click.option(
    "--allow-cpu-offload",
    is_flag=True,
    help="Models that do not fit VRAM only warn (ollama, llama.cpp can offload).",
)
@click.pass_obj
def check(obj: CliContext, allow_cpu_offload: bool) -> None:
    """Validate the inventory; exit 2 with file, line and fix on the first problem."""
    from provision.inventory.checks import check_inventory

    inv = obj.load_inventory()
    warnings = check_inventory(inv, allow_cpu_offload=allow_cpu_offload)
    for warning in warnings:
        obj.warn(warning)
    summary = {
        "file": str(inv.source),
        "valid": True,
        "hosts": sorted(inv.hosts),
        "gpus": sorted(inv.gpus),
        "vms": sorted(inv.vms),
        "warnings": warnings,
    }
    obj.emit(
        summary,
        f"{inv.source}: OK ({len(inv.hosts)} host(s), {len(inv.gpus)} GPU(s), "
        f"{len(inv.vms)} VM(s))",
    )


@inventory.command("show")
@click.pass_obj
def show(obj: CliContext) -> None:
    """Print the resolved inventory (defaults merged; secrets shown only by reference)."""
    import yaml

    inv = obj.load_inventory()
    data = inv.model_dump(mode="json", exclude_none=True, by_alias=True)
    obj.emit(data, yaml.safe_dump(data, sort_keys=False))


@inventory.command("schema")
@click.pass_obj
def schema(obj: CliContext) -> None:
    """Print the JSON Schema of the inventory format (for editor autocompletion)."""
    from provision.inventory.model import Inventory

    document = Inventory.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "aihost inventory v1"
    document.get("properties", {}).pop("source", None)
    obj.stdout.write(json.dumps(document, indent=2) + "\n")
