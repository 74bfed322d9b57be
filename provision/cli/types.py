"""Click parameter types that refuse what would crash or mislead later: NaN, infinities,
negative durations, ports out of range, vmids outside Proxmox's range, fixture files
that are not fixtures. A refusal is Click's usage error (exit 2) naming the option."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from provision.inventory.pveformats import VMID_MAX, VMID_MIN

MAX_SECONDS = 7 * 24 * 3600.0  # a week: longer than any wait aihost does


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses NaN and the infinities (which pass its bounds)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The float, or a usage error naming the option."""
        number = super().convert(value, param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def seconds(minimum: float = 0.0, *, allow_zero: bool = False) -> FiniteFloatRange:
    """A duration in seconds: finite, above minimum (or equal with allow_zero), at most a week."""
    return FiniteFloatRange(min=minimum, max=MAX_SECONDS, min_open=not allow_zero)


def positive_float() -> FiniteFloatRange:
    """A finite number above 0 (GB of VRAM and the like)."""
    return FiniteFloatRange(min=0, min_open=True)


PORT_OR_ANY = click.IntRange(0, 65535)  # 0: any free port
VMID = click.IntRange(VMID_MIN, VMID_MAX)  # 'pve-vmid'


class FixtureParam(click.ParamType):
    """A simulator fixture: a shipped name, or a regular YAML file with a `nodes` mapping."""

    name = "FILE|NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The fixture's path, or a usage error naming the option."""
        from provision.errors import InputError
        from provision.inventory.fixture_ref import resolve_fixture

        if isinstance(value, Path):
            return value
        try:
            return resolve_fixture(str(value), None)
        except InputError as exc:
            self.fail(str(exc), param, ctx)


class PciAddress(click.ParamType):
    """A PCI address as the inventory's `pci:` takes it (0000:01:00 or 01:00.0)."""

    name = "ADDRESS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The address as given, or a usage error naming the option."""
        from provision.inventory.model import PCI_RE

        if not isinstance(value, str) or not PCI_RE.fullmatch(value):
            self.fail(f"{value!r} is not a PCI address like 0000:01:00 or 01:00.0", param, ctx)
        return value
