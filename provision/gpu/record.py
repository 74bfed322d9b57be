"""The lease record: who holds a GPU and which operation is under way, as text in Proxmox.

The record lives in a Proxmox-side register (a PCI mapping's description, or the node's
notes for raw GPUs) as one line `aihost-lease <gpu>: {json}` among whatever else the
user wrote there, which is kept as it is. A mapping's description cannot hold a line
feed: there provision.gpu.register joins the lines with spaces and splits them again.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

LINE = re.compile(r"^aihost-lease (?P<gpu>[^:\s]+): (?P<body>\{.*\})\s*$")

IDLE = "idle"
# Swap phases, in order: stopping, detached, attached, started. Before started a crash is
# rolled back; from started on, finished. A rollback under way (its target had started
# and failed its check) is recorded as ROLLING_BACK: a crash then is rolled back further.
ROLLING_BACK = "rolling back"
# `vm up`'s phases: attaching (its config write adds the GPU), starting (it starts or
# restarts a VM whose config already names the GPU). Either is finished when the VM's
# config names the card and no other VM's does, else rolled back (gpu.recovery).
ATTACHING = "attaching"
STARTING = "starting"


@dataclass(frozen=True)
class LeaseRecord:
    """Holder of a GPU, and the operation in progress (op None when idle)."""

    holder: int | None = None
    holder_name: str | None = None
    op: str | None = None
    phase: str = IDLE
    source: int | None = None
    source_was_running: bool = False
    target: int | None = None
    target_name: str | None = None
    owner: str | None = None
    time: float = 0.0

    @property
    def busy(self) -> bool:
        """True while an operation holds the lease."""
        return self.op is not None

    def with_(self, **changes: Any) -> LeaseRecord:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)


def parse_records(text: str) -> dict[str, LeaseRecord]:
    """Every lease record in a register's text, by GPU name (bad lines are ignored)."""
    found: dict[str, LeaseRecord] = {}
    for line in text.splitlines():
        match = LINE.match(line.strip())
        if not match:
            continue
        try:
            data = json.loads(match.group("body"))
            known = {k: v for k, v in data.items() if k in LeaseRecord.__dataclass_fields__}
            found[match.group("gpu")] = LeaseRecord(**known)
        except (ValueError, TypeError):
            continue
    return found


def write_record(text: str, gpu: str, record: LeaseRecord | None) -> str:
    """text with gpu's record replaced (or removed when None); other lines stay as they are."""
    kept = []
    for line in text.splitlines():
        match = LINE.match(line.strip())
        if match and match.group("gpu") == gpu:
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    if record is not None:
        body = json.dumps(
            {k: v for k, v in record.to_json().items() if v not in (None, False, 0.0, IDLE)},
            separators=(",", ":"),
            sort_keys=True,
        )
        kept.append(f"aihost-lease {gpu}: {body}")
    return "\n".join(kept) + ("\n" if kept else "")
