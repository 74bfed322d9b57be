"""Follow the guest's first boot through /var/lib/aihost/state.json (written by the
user-data's aihost-firstboot and aihost-boot scripts; read with the agent's file-read).

Phases in order: driver, reboot, runtime, models, health, then done. A failed phase
carries the failing command's own error text, which aihost reports instead of a timeout.
While the models phase downloads, the file's `download` gives its bytes (provision.guest.
progress): each new reading is a progress line and, for -o json, an event. While it waits
for another VM's download into the node's shared model store, `store_wait` names that VM.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision.errors import GuestError, WaitTimeout
from provision.guest.agent import GuestAgent
from provision.guest.progress import Download, DownloadMeter, describe, event, parse_download

Events = Callable[[dict[str, Any]], None]

STATE_PATH = "/var/lib/aihost/state.json"
RESULT_PATH = "/run/cloud-init/result.json"
HINTS = {
    "driver": "the NVIDIA driver install failed in the guest; see /var/log/cloud-init-output.log",
    "reboot": "the guest did not come back from the driver reboot; look at the VM console",
    "runtime": "installing the LLM runtime failed; see /var/log/cloud-init-output.log",
    "models": "the runtime could not get its models; fix the name or source and re-run "
    "`aihost vm up NAME --reprovision`",
}


@dataclass(frozen=True)
class FirstBoot:
    """One reading of the state file."""

    phase: str
    status: str
    error: str | None
    instance_id: str | None = None
    download: Download | None = None
    store_wait: str | None = None  # the VM whose download into the model store it waits for

    @property
    def finished(self) -> bool:
        """True when first boot is done or a phase failed."""
        return self.status == "failed" or self.phase == "done"


def read_state(agent: GuestAgent) -> FirstBoot | None:
    """The guest's first-boot state, or None when there is none (yet) to read."""
    text = agent.read_file(STATE_PATH)
    if not text:
        return None
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("phase"), str):
        return None
    error = data.get("error")
    iid = data.get("instance_id")
    models = data["phase"] == "models"
    wait = data.get("store_wait")
    holder = wait.get("holder") if models and isinstance(wait, dict) else None
    return FirstBoot(
        str(data["phase"]),
        str(data.get("status", "")),
        str(error) if error else None,
        str(iid) if iid else None,
        parse_download(data.get("download")) if models else None,
        str(holder) if holder else None,
    )


# The pause between readings doubles from 0.05 s up to a cap: READ_SHARE of the time
# waited so far, at least FASTEST and at most SLOWEST. So first boot's end is seen within
# max(0.25 s, 2.5% of the wait) of it (a baked VM's 10 s health phase: 0.25 s, where a
# cap of 1 s took 0.5 s on average), for about 60 readings more than one a second over a
# wait of any length (4 a second until 10 s, one a second from 40 s on).
FASTEST, SLOWEST, READ_SHARE = 0.25, 1.0, 0.025


def next_pause(previous: float, waited: float) -> float:
    """The pause before the next reading of the state file, after one of previous seconds,
    waited seconds into the wait."""
    return min(previous * 2, max(FASTEST, min(SLOWEST, READ_SHARE * waited)))


def _cloud_init_finished(agent: GuestAgent) -> bool:
    """True once cloud-init's final stage wrote /run/cloud-init/result.json on this boot
    (`cloud-init status` is no help here: it says error while still running once any
    module failed)."""
    return agent.read_file(RESULT_PATH) is not None


class _Shown:
    """What the wait has said of the readings so far: each new phase, each VM the guest
    waits for (its download into the shared model store), each new download reading."""

    def __init__(self, say: Callable[[str], None], emit: Events) -> None:
        self.say, self.emit = say, emit
        self.phase: tuple[str, str] | None = None
        self.holder: str | None = None
        self.meter = DownloadMeter()

    def show(self, state: FirstBoot, at: float) -> None:
        """Say what is new in this reading (made at clock time at)."""
        if (state.phase, state.status) != self.phase:
            self.phase = (state.phase, state.status)
            self.say(f"first boot: {state.phase} {state.status}")
            self.emit({"event": "phase", "phase": state.phase, "status": state.status})
        if state.store_wait and state.store_wait != self.holder:
            self.holder = state.store_wait
            self.say(f"first boot: waiting for {self.holder} to finish its download into the store")
            self.emit({"event": "store_wait", "holder": self.holder})
        download = state.download
        if download and self.meter.read(download, at):
            eta = self.meter.eta(download)
            self.say(f"first boot: {describe(download, eta)}")
            self.emit(event(download, self.meter.rate, eta))


def wait_first_boot(
    agent: GuestAgent,
    timeout: float,
    say: Callable[[str], None],
    instance_id: str | None = None,
    events: Events | None = None,
) -> FirstBoot | None:
    """Wait until first boot is done or failed, saying each new phase; None when cloud-init
    finished and left no state file (user-data not aihost's). While the file is missing and
    cloud-init still runs (the agent starts before cloud-init writes aihost's scripts), or
    the guest is away (the driver reboot), it keeps waiting. With instance_id, a state of
    another instance (the one before `--reprovision`) counts as no state yet.

    A failed driver, reboot, runtime or models phase raises GuestError with the guest's own
    error; a failed health phase is returned so the caller's checks say what is wrong.
    events gets each phase change and download reading as a JSON-ready dict."""
    start = agent.clock()
    delay = 0.05
    shown = _Shown(say, events or (lambda _event: None))
    while True:
        read_at = agent.clock()
        state = read_state(agent)
        if state is not None and instance_id and state.instance_id != instance_id:
            state = None
        if state is None and shown.phase is None and _cloud_init_finished(agent):
            return None
        if state is not None:
            shown.show(state, agent.clock())
        if state is not None and state.finished:
            if state.status == "failed" and state.phase in HINTS:
                raise GuestError(
                    f"first boot failed in the {state.phase} phase: "
                    f"{state.error or 'no error text'}",
                    hint=HINTS[state.phase],
                )
            return state
        waited = agent.clock() - start
        if waited >= timeout:
            phase = f"{state.phase} ({state.status})" if state else "unknown"
            raise WaitTimeout(
                f"first boot did not finish within {timeout:.0f} s; the guest is in phase {phase}",
                hint="re-run `aihost vm up` later, or raise --agent-timeout",
            )
        # the pause counts from the reading's start: while the guest is away, a reading
        # takes Proxmox's 3 s guest-ping timeout by itself (QemuServer/Agent.pm)
        pause = min(delay, max(0.0, timeout - waited)) - (agent.clock() - read_at)
        if pause > 0:
            agent.sleep(pause)
        delay = next_pause(delay, waited)
