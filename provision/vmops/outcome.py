"""What `vm up` is asked to do (UpOptions) and what it did for one VM (UpResult)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provision.guest.verify import GuestReport
from provision.plan.model import Plan
from provision.vmops.access import Access


@dataclass
class UpOptions:
    """How `vm up` behaves."""

    wait: bool = True
    agent_timeout: float = 900.0
    take_gpu: bool = False
    force: bool = False
    reprovision: bool = False
    preflight: bool = True


@dataclass
class UpResult:
    """What `vm up` did for one VM."""

    vm: str
    plan: Plan
    vmid: int | None = None
    applied: list[str] = field(default_factory=list)
    report: GuestReport | None = None
    access: Access | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str | None:
        """The LLM endpoint (None without a runtime or before the VM was checked)."""
        return self.access.endpoint if self.access else None

    def to_json(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return {
            "vm": self.vm,
            "vmid": self.vmid,
            "plan": self.plan.to_json(),
            "applied": self.applied,
            "guest": self.report.to_json() if self.report else None,
            "endpoint": self.endpoint,
            "address": self.access.address if self.access else None,
            "way_in": self.access.way_in if self.access else None,
            "warnings": self.warnings,
        }
