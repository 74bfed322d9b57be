"""Retrying a compare-and-set whose digest covers more than the value being changed.

Proxmox keeps every PCI mapping in one file, `mapping/pci.cfg`, under one digest:
pve-manager `PVE/API2/Cluster/Mapping/PCI.pm` returns `$cfg->{digest}` from `index` and
`get`, and `update` asserts it for the whole file. A write to another GPU's mapping
therefore makes our digest stale although nothing of ours changed. Such a conflict is
re-read and retried after a random pause (bounded); only a change of this GPU's own
record is a conflict the user hears about (exit 4).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from provision.errors import AihostError, ApiError, ConflictError

OWN = "own"  # the record we read changed: someone else wrote this GPU's lease
OTHER = "other"  # only the digest moved: another mapping or other text changed


@dataclass(frozen=True)
class Backoff:
    """Bounded attempts with "full jitter": pause n is uniform in [0, min(cap, first·2ⁿ))."""

    attempts: int = 20
    first: float = 0.02
    cap: float = 0.5

    def delay(self, retry: int, rand: Callable[[], float]) -> float:
        """Seconds to wait before retry number `retry` (0-based); rand gives [0, 1)."""
        return rand() * min(self.cap, self.first * 2.0 ** min(retry, 32))


def cause(seen: object, fresh: object) -> str:
    """Why a write lost: OWN when this GPU's record differs from the one the write was
    based on, OTHER when it is the same (the file changed elsewhere)."""
    return OWN if seen != fresh else OTHER


def exhausted(what: str, where: str, last_cause: str, attempts: int) -> AihostError:
    """The error after the last attempt: a conflict (exit 4) only when this GPU's own
    record kept changing, else an API error (exit 3) about the busy file."""
    if last_cause == OWN:
        return ConflictError(f"could not update {what} in {where}: it keeps changing under us")
    return ApiError(
        f"could not update {what} in {where}: other writers changed the file "
        f"{attempts} times in a row",
        hint="try again",
    )


class Retrier:
    """Backoff plus the sleep and randomness it uses (injectable: tests pass no-ops)."""

    def __init__(
        self,
        backoff: Backoff | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.rand = rand

    @property
    def attempts(self) -> int:
        """How many writes are tried at most."""
        return self.backoff.attempts

    def pause(self, retry: int) -> None:
        """Sleep the jittered delay before retry number `retry`."""
        self.sleep(self.backoff.delay(retry, self.rand))
