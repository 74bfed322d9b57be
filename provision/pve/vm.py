"""One VM as a handle: its config with digest, writes guarded by it, power with waits.

Every start, shutdown, stop and reboot waits for its task with one rule: the task gets the
operation's own timeout plus TASK_MARGIN; a start's timeout is never below qemu-server's
default for the config it starts (`config_aware_timeout`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provision.errors import ApiError
from provision.pve.api import Api, Progress
from provision.pve.reboot import reboot
from provision.pve.tasks import TASK_MARGIN, TaskResult, wait_task
from provision.pve.vmconfig import config_aware_timeout, with_pending

# qemu-server's load_config dies with this when the VM's config file is gone (removed
# after the VM was listed): the VM no longer exists.
_CONFIG_GONE = re.compile(r"Configuration file '[^']*' does not exist")


def config_gone(message: str) -> bool:
    """True when an API error's message says the VM's config no longer exists."""
    return bool(_CONFIG_GONE.search(message))


CONFIG_TIMEOUT = 600.0  # a config write, resize or removal (disk work)


def _quiet(_message: str) -> None:
    return None


def start_timeout(requested: int, config: Mapping[str, object]) -> int:
    """The timeout a start of config gets: the requested one, never below qemu-server's
    own default for that config (`config_aware_timeout`: x4 with a GPU)."""
    return max(int(requested), config_aware_timeout(config))


@dataclass
class Vm:
    """A VM on a node, addressed by vmid; requests go through api."""

    api: Api
    node: str
    vmid: int
    progress: Progress = _quiet
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @property
    def path(self) -> str:
        """The VM's API path."""
        return f"/nodes/{self.node}/qemu/{self.vmid}"

    def wait(self, upid: str | None, *, timeout: float, what: str) -> TaskResult:
        """Wait for one of this VM's tasks (no request when upid is None)."""
        return wait_task(
            self.api,
            upid,
            timeout=timeout,
            what=what,
            progress=self.progress,
            clock=self.clock,
            sleep=self.sleep,
        )

    def agent_get(self, name: str, /, **params: Any) -> Any:
        """GET one of the VM's guest-agent commands (exec-status, file-read, ...)."""
        return self.api.get(f"{self.path}/agent/{name}", **params)

    def agent_post(self, name: str, /, **params: Any) -> Any:
        """POST one of the VM's guest-agent commands (ping, exec, ...)."""
        return self.api.post(f"{self.path}/agent/{name}", **params)

    def config(self) -> dict[str, Any]:
        """The current config, with Proxmox's `digest` of it."""
        return dict(self.api.get(f"{self.path}/config") or {})

    def config_with_pending(self) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The config with pending changes applied and its `digest` (what `config()`
        returns), and the keys waiting in [PENDING] for the next start, in one GET of
        .../pending (VM.Audit, as .../config)."""
        return with_pending(self.api.get(f"{self.path}/pending") or [])

    def config_if_any(self) -> dict[str, Any] | None:
        """The current config, or None when the VM no longer exists (removed since it was
        listed: after a failed create, by a twin's run or by the user)."""
        try:
            return self.config()
        except ApiError as exc:
            if config_gone(exc.message):
                return None
            raise

    def write(
        self, params: Mapping[str, Any], *, digest: str | None = None, what: str = "configure"
    ) -> TaskResult:
        """Change the config (POST, as a task) unless it changed since digest."""
        sent = {k: v for k, v in params.items() if v is not None}
        if digest:
            sent["digest"] = digest
        upid = self.api.post(f"{self.path}/config", **sent)
        return self.wait(upid, timeout=CONFIG_TIMEOUT, what=what)

    def set_now(self, params: Mapping[str, Any], *, digest: str | None = None) -> None:
        """Change the config synchronously (PUT) unless it changed since digest."""
        sent = dict(params)
        if digest:
            sent["digest"] = digest
        self.api.put(f"{self.path}/config", **sent)

    def resize(self, disk: str, size: str) -> TaskResult:
        """Grow a disk to size (e.g. 64G)."""
        upid = self.api.put(f"{self.path}/resize", disk=disk, size=size)
        return self.wait(upid, timeout=CONFIG_TIMEOUT, what="resize")

    def status(self) -> dict[str, Any]:
        """Live status (GET status/current): status, qmpstatus, lock…"""
        return dict(self.api.get(f"{self.path}/status/current") or {})

    def state(self) -> str:
        """running / stopped / …, live."""
        return str(self.status().get("status"))

    def start(
        self, timeout: int, *, config: Mapping[str, object] | None = None, what: str = "start"
    ) -> TaskResult:
        """Start, and wait for the start task. The timeout is raised to qemu-server's own
        default for config (read when not given: x4 with a GPU)."""
        timeout = start_timeout(timeout, config if config is not None else self.config())
        upid = self.api.post(f"{self.path}/status/start", timeout=timeout)
        return self.wait(upid, timeout=timeout + TASK_MARGIN, what=what)

    def shutdown(
        self, timeout: float, *, force: bool = False, what: str = "shutdown"
    ) -> TaskResult:
        """Shut down through the guest agent or ACPI within timeout; force: stop after it."""
        params: dict[str, Any] = {"timeout": int(timeout)}
        if force:
            params["forceStop"] = 1
        upid = self.api.post(f"{self.path}/status/shutdown", **params)
        return self.wait(upid, timeout=timeout + TASK_MARGIN, what=what)

    def stop(self, timeout: float = TASK_MARGIN, *, what: str = "stop") -> TaskResult:
        """Stop at once (power off)."""
        upid = self.api.post(f"{self.path}/status/stop")
        return self.wait(upid, timeout=timeout + TASK_MARGIN, what=what)

    def reboot(self, start_timeout: float) -> None:
        """Reboot and return once the VM runs again (see provision.pve.reboot)."""
        reboot(self, start_timeout=start_timeout)

    def destroy(self, *, unreferenced_disks: bool = False, what: str = "destroy") -> TaskResult:
        """Remove the VM (purge=1); unreferenced_disks: also disks no config names."""
        extra = {"destroy-unreferenced-disks": 1} if unreferenced_disks else {}
        upid = self.api.delete(self.path, purge=1, **extra)
        return self.wait(upid, timeout=CONFIG_TIMEOUT, what=what)

    def clone(self, newid: int, **params: Any) -> Any:
        """Start a clone of this VM (a template) as newid; the task's UPID."""
        return self.api.post(f"{self.path}/clone", newid=newid, **params)

    def make_template(self) -> TaskResult:
        """Convert the stopped VM into a template (POST template: a `qmtemplate` task)."""
        upid = self.api.post(f"{self.path}/template")
        return self.wait(upid, timeout=CONFIG_TIMEOUT, what="convert to a template")
