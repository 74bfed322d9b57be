"""A host's `sim_fixture:`: which simulator world file it names, checked before use.

Only paths and the inventory's reading limits: nothing of the simulator is imported, so
the inventory (and the CLI's option types) can check a fixture cheaply.
"""

from __future__ import annotations

from pathlib import Path

from provision.errors import InputError, InventoryError
from provision.inventory.reading import read_inventory_text
from provision.inventory.yamlpos import YamlSyntaxError, load_with_lines


def resolve_fixture(name: str | None, inventory_file: Path | None) -> Path | None:
    """A sim_fixture: a path (relative to the inventory) or a shipped fixture's name."""
    if not name:
        return None
    candidates = [Path(name).expanduser()]
    if inventory_file is not None and not Path(name).is_absolute():
        candidates.insert(0, inventory_file.parent / name)
    shipped = Path(__file__).resolve().parent.parent / "sim" / "fixtures"  # data files only
    candidates += [shipped / name, shipped / f"{name}.yaml"]
    for candidate in candidates:
        if candidate.exists():
            check_fixture(candidate)
            return candidate
    known = sorted(p.stem for p in shipped.glob("*.yaml")) if shipped.is_dir() else []
    raise InputError(
        f"sim_fixture '{name}' is neither a file nor a shipped fixture",
        hint=f"shipped fixtures: {', '.join(known) or 'none'}",
    )


def check_fixture(path: Path) -> None:
    """Refuse a fixture that is not a simulator world, before the simulator reads it: a
    regular file, bounded, UTF-8, bounded YAML (provision.inventory limits), with `nodes`."""
    text = read_inventory_text(path, str(path), "simulator fixture")
    try:
        data, _ = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise InventoryError(str(exc), file=str(path), line=exc.line) from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
        raise InventoryError(
            "not a simulator fixture: it needs a 'nodes' mapping",
            file=str(path),
            line=1,
            hint="see provision/sim/fixtures/default.yaml, or name a shipped fixture",
        )
