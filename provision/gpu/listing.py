"""`aihost gpu list`: every inventory GPU, its holder from Proxmox, any swap under way."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from provision.gpu.context import GpuContext
from provision.gpu.mapping import mapping_exists
from provision.pve.session import Session


@dataclass
class GpuRow:
    """One GPU as the cluster sees it."""

    gpu: str
    node: str
    device: str
    vram_gb: float
    holder: str | None
    holder_vmid: int | None
    holder_running: bool
    also_named_by: list[str]
    operation: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return asdict(self)


def list_gpus(session: Session) -> list[GpuRow]:
    """Rows for every inventory GPU (holders read from the VM configs in Proxmox)."""
    rows = []
    for name in sorted(session.inv.gpus):
        ctx = GpuContext(session, name)
        if ctx.gpu.mapping and not mapping_exists(ctx.client, ctx.gpu.mapping):
            rows.append(
                GpuRow(
                    gpu=name,
                    node=ctx.node,
                    device=f"mapping {ctx.gpu.mapping} (not created yet)",
                    vram_gb=ctx.gpu.vram_gb,
                    holder=None,
                    holder_vmid=None,
                    holder_running=False,
                    also_named_by=[],
                    operation=None,
                )
            )
            continue
        holders = ctx.holders()
        record = ctx.lease.read()
        running = [h for h in holders if h.status == "running"]
        candidates = running or holders
        first = candidates[0] if candidates else None
        operation = None
        if record.busy:
            operation = {
                "op": record.op,
                "phase": record.phase,
                "owner": record.owner,
                "to": record.target_name or record.target,
                "abandoned": ctx.lease.abandoned(record),
            }
        rows.append(
            GpuRow(
                gpu=name,
                node=ctx.node,
                device=f"mapping {ctx.gpu.mapping}" if ctx.gpu.mapping else f"pci {ctx.gpu.pci}",
                vram_gb=ctx.gpu.vram_gb,
                holder=first.name if first else None,
                holder_vmid=first.vmid if first else None,
                holder_running=bool(first and first.status == "running"),
                also_named_by=[f"{h.name} ({h.vmid})" for h in holders if h is not first],
                operation=operation,
            )
        )
    return rows


def format_rows(rows: list[GpuRow]) -> str:
    """A table for the terminal."""
    lines = [f"{'GPU':<10} {'NODE':<8} {'DEVICE':<22} {'VRAM':>6}  {'HOLDER':<20} STATE"]
    width = max([22, *(len(r.device) for r in rows)])
    lines[0] = f"{'GPU':<10} {'NODE':<8} {'DEVICE':<{width}} {'VRAM':>6}  {'HOLDER':<20} STATE"
    for r in rows:
        holder = f"{r.holder} ({r.holder_vmid})" if r.holder else "-"
        state = "running" if r.holder_running else ("stopped" if r.holder else "free")
        if r.operation:
            state += f"; {r.operation['phase']} -> {r.operation['to']}"
            if r.operation["abandoned"]:
                state += " (abandoned: run `aihost gpu recover`)"
        if r.also_named_by:
            state += f"; ALSO named by {', '.join(r.also_named_by)}"
        lines.append(
            f"{r.gpu:<10} {r.node:<8} {r.device:<{width}} {r.vram_gb:>5g}G  {holder:<20} {state}"
        )
    return "\n".join(lines)
