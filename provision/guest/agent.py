"""QEMU guest agent calls through the Proxmox API: ping, exec, interfaces."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from provision.errors import ApiError, GuestError, WaitTimeout
from provision.pve.vm import Vm

# glib's g_spawn error, which qemu-ga's guest-exec returns when it cannot start the program
# (wrapped in "Guest agent command failed, error was '...'" before qemu-ga 9.1).
_SPAWN_FAILED = re.compile(
    r"Failed to execute child process [\u201c\"](?P<program>.*?)[\u201d\"] "
    r"\((?P<reason>[^)]*)\)"
)


# qemu-server QemuServer/Agent.pm assert_agent_available: the refusals of a VM whose agent
# can never answer this wait (the third, "QEMU guest agent is not running", means not yet)
_NO_AGENT = "No QEMU guest agent configured"
_VM_DOWN = re.compile(r"VM (?P<vmid>\d+) is not running")


class ProgramNotFound(GuestError):
    """qemu-ga could not start the program. guest-exec runs no shell, so a program that is
    not in the guest fails the agent call itself (HTTP 500 "Agent error: ... Failed to
    execute child process ..."), rather than exiting 127."""

    def __init__(self, program: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.program = program
        self.reason = reason


@dataclass(frozen=True)
class ExecResult:
    """A finished command in the guest."""

    exitcode: int
    out: str
    err: str


class GuestAgent:
    """The agent of one VM, reached through the VM's handle."""

    def __init__(
        self,
        vm: Vm,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        may_stop: bool = False,
    ) -> None:
        self.vm = vm
        self.clock = clock
        self.sleep = sleep
        self.may_stop = may_stop  # the guest powering off is expected (a bake ends so)

    def ping(self) -> bool:
        """True when the agent answers; False while it is not running (yet); GuestError
        when it never will (see _give_up_on)."""
        try:
            self.vm.agent_post("ping")
        except ApiError as exc:
            self._give_up_on(exc)
            if exc.status == 500 or "not running" in exc.message:
                return False
            raise
        return True

    def _give_up_on(self, refusal: ApiError) -> None:
        """GuestError when an agent call's refusal says no agent can answer during this
        wait: the VM stopped (the guest powered itself off, or someone stopped it) or it
        has no agent configured. Waiting on would only end in a timeout minutes later."""
        if _NO_AGENT in refusal.message:
            raise GuestError(
                f"VM {self.vm.vmid} has no guest agent configured, so aihost cannot check "
                "the guest",
                hint="aihost sets agent: 1 on the VMs it makes: re-run `aihost vm up`",
            ) from None
        if _VM_DOWN.search(refusal.message) and not self.may_stop:
            raise GuestError(
                f"VM {self.vm.vmid} stopped while aihost waited for its guest",
                hint="the guest powered itself off or someone stopped it: look at the VM "
                "console and its task log, then re-run `aihost vm up`",
            ) from None

    def wait_ready(self, timeout: float, progress: Callable[[str], None] | None = None) -> float:
        """Poll ping with backoff until the agent answers; return the seconds waited. A
        ping the agent does not answer takes Proxmox's guest-ping timeout (3 s) itself:
        the pause is what is left of the backoff after the ping, so pings still start at
        most once per backoff, and a slow refusal is not followed by a full pause."""
        start = self.clock()
        delay = 0.05
        announced = False
        while True:
            asked = self.clock()
            if self.ping():
                break
            waited = self.clock() - start
            if waited >= timeout:
                raise WaitTimeout(
                    f"the guest agent did not answer within {timeout:.0f} s",
                    hint="usually the guest is still installing packages, or qemu-guest-agent "
                    "is not installed or the VM lacks agent: 1; raise --agent-timeout or "
                    "look at the VM console",
                )
            if progress and not announced:
                progress("waiting for the guest agent (cloud-init installs it on first boot)")
                announced = True
            pause = min(delay, max(0.0, timeout - waited)) - (self.clock() - asked)
            if pause > 0:
                self.sleep(pause)
            delay = min(delay * 2, 1.0)
        return self.clock() - start

    def run(self, command: list[str], timeout: float = 60) -> ExecResult:
        """Run a command in the guest and wait for it to exit (bounded); ProgramNotFound
        when the agent cannot start it (not installed, not executable)."""
        try:
            started = self.vm.agent_post("exec", command=command)
        except ApiError as exc:
            spawn = _SPAWN_FAILED.search(exc.message)
            if spawn is None:
                raise
            raise ProgramNotFound(
                spawn["program"],
                spawn["reason"],
                f"the guest cannot run {command[0]}: {spawn['reason']}",
            ) from None
        pid = started["pid"] if isinstance(started, dict) else started
        begin = self.clock()
        delay = 0.05
        while True:
            status = self.vm.agent_get("exec-status", pid=pid)
            if status.get("exited"):
                return ExecResult(
                    exitcode=int(status.get("exitcode", -1)),
                    out=status.get("out-data", "") or "",
                    err=status.get("err-data", "") or "",
                )
            if self.clock() - begin >= timeout:
                raise WaitTimeout(
                    f"`{' '.join(command)}` in the guest did not finish within {timeout:.0f} s"
                )
            self.sleep(delay)
            delay = min(delay * 2, 1.0)

    def read_file(self, path: str) -> str | None:
        """A guest file's text via agent/file-read; None when it cannot be read (absent,
        the agent not answering, or a token without VM.GuestAgent.FileRead); GuestError
        when the agent never will answer (_give_up_on)."""
        try:
            data = self.vm.agent_get("file-read", file=path)
        except ApiError as exc:
            self._give_up_on(exc)
            return None
        content = data.get("content") if isinstance(data, dict) else None
        return content if isinstance(content, str) else None

    def addresses(self) -> list[str]:
        """The guest's non-loopback IPv4 addresses."""
        data = self.vm.agent_get("network-get-interfaces")
        result = data.get("result", data) if isinstance(data, dict) else data
        found: list[str] = []
        for iface in result or []:
            if iface.get("name") == "lo":
                continue
            for addr in iface.get("ip-addresses", []):
                if addr.get("ip-address-type") == "ipv4":
                    found.append(addr["ip-address"])
        return found
