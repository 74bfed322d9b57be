"""Plan data: what aihost will change on one VM, in order, as text and JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ActionKind = Literal[
    "clone",
    "create",
    "map-gpu",
    "create-store",
    "update-store",
    "upload-user-data",
    "upload-iso",
    "configure",
    "resize",
    "take-gpu",
    "start",
    "restart",
    "verify",
]


@dataclass(frozen=True)
class Change:
    """One config key: old value (None = absent) to new value (None = delete)."""

    key: str
    old: str | None
    new: str | None

    def describe(self) -> str:
        """`key: old -> new` with secrets left out of sshkeys-style long values."""
        if self.new is None:
            return f"- {self.key}: {_short(self.old)}"
        if self.old is None:
            return f"+ {self.key}: {_short(self.new)}"
        return f"~ {self.key}: {_short(self.old)} -> {_short(self.new)}"


@dataclass(frozen=True)
class Action:
    """One step of a plan, with the parameters the executor and the pre-flight use."""

    kind: ActionKind
    summary: str
    changes: tuple[Change, ...] = ()
    writes: bool = True
    gpu: str | None = None  # map-gpu, take-gpu: which GPU
    gpus: tuple[str, ...] = ()  # clone, create, configure: GPUs attached under their lease
    disk: str | None = None  # resize: which disk
    size: str | None = None  # resize: to what size
    timeout: int | None = None  # start, restart: the start timeout in seconds

    def to_json(self) -> dict[str, Any]:
        """The action as plain data (kind, summary, changes, writes)."""
        return {
            "kind": self.kind,
            "summary": self.summary,
            "changes": [asdict(c) for c in self.changes],
            "writes": self.writes,
        }


@dataclass
class Plan:
    """Desired (inventory) vs actual (Proxmox) for one VM."""

    vm: str
    node: str
    vmid: int | None
    exists: bool
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changes_anything(self) -> bool:
        """True when applying the plan writes to Proxmox or the node."""
        return any(action.writes for action in self.actions)

    def to_json(self) -> dict[str, Any]:
        """The plan as plain data for --output json."""
        return {
            "vm": self.vm,
            "node": self.node,
            "vmid": self.vmid,
            "exists": self.exists,
            "changes": self.changes_anything,
            "actions": [a.to_json() for a in self.actions],
            "notes": self.notes,
        }

    def to_text(self) -> str:
        """A readable diff, one action per line and one line per changed key."""
        where = f"{self.node}/{self.vmid}" if self.vmid else self.node
        if not self.changes_anything:
            lines = [f"{self.vm} ({where}): no changes"]
        else:
            lines = [f"{self.vm} ({where}):"]
            for index, action in enumerate(a for a in self.actions if a.writes):
                lines.append(f"  {index + 1}. {action.summary}")
                lines.extend(f"       {change.describe()}" for change in action.changes)
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _short(value: str | None, limit: int = 70) -> str:
    text = "" if value is None else str(value).strip().replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."
