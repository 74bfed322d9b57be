"""What a route handler gets: the world, the caller, the parameters and task helpers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.sim import faults
from provision.sim.auth import Identity
from provision.sim.http import ApiFailure, fail
from provision.sim.perms import require
from provision.sim.state import World
from provision.sim.tasks import new_task

Handler = Callable[["Ctx"], Any]
Route = tuple[str, str, Handler]


@dataclass
class Ctx:
    """One request being served inside the state transaction."""

    world: World
    now: float
    identity: Identity
    params: dict[str, Any]
    state_dir: Path
    durations: dict[str, float]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def require(self, path: str, privs: list[str], any_of: bool = False) -> None:
        """403 unless the caller holds privs on path."""
        require(self.identity, path, privs, any_of)

    def node(self, name: str | None = None) -> str:
        """The request's node, refused when unknown or offline."""
        node = str(name or self.params["node"])
        if node not in self.world["nodes"]:
            raise fail(
                f"hostname lookup '{node}' failed - failed to get address info for: "
                f"{node}: Name or service not known"
            )
        if node in faults.offline_nodes(self.world):
            raise ApiFailure(595, f"Connection refused (node '{node}' is offline)")
        return node

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean parameter ("1"/"0", "true"/"false")."""
        value = self.params.get(name)
        if value is None:
            return default
        return str(value).lower() in ("1", "true", "yes", "on")

    def task(
        self,
        kind: str,
        vmid: str,
        effect: dict[str, Any],
        *,
        node: str | None = None,
        error: str | None = None,
        warnings: list[str] | None = None,
        log: list[str] | None = None,
        duration: float | None = None,
    ) -> str:
        """Start a task of kind (duration from the durations table plus fault latency)."""
        node = node or self.node()
        extra, injected = faults.task_fault(self.world, kind, node)
        seconds = (self.durations.get(kind, 0.0) if duration is None else duration) + extra
        return new_task(
            self.world,
            self.now,
            node=node,
            kind=kind,
            vmid=vmid,
            user=self.identity.auth_id,
            duration=seconds,
            effect=effect,
            error=error or injected,
            warnings=warnings,
            log=log,
        )


def compile_routes(routes: list[Route]) -> list[tuple[str, str, re.Pattern[str], Handler]]:
    """Route templates as regexes ({volume} may contain '/')."""
    out = []
    for method, template, handler in routes:
        pattern = re.sub(
            r"\{(\w+)\}",
            lambda m: (
                f"(?P<{m.group(1)}>.+)" if m.group(1) == "volume" else f"(?P<{m.group(1)}>[^/]+)"
            ),  # noqa: E501
            template,
        )
        out.append((method, template, re.compile(pattern + "/?"), handler))
    return out
