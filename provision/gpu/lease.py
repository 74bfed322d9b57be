"""The GPU lease: one holder and at most one operation per GPU, kept in Proxmox.

Every change is a compare-and-set on the register: two operators (or processes) racing
for one GPU both read the same digest, and only the first write wins; the loser re-reads
and sees the winner's operation. A record whose owner process is gone (same machine) or
that has not moved for `stale_after` seconds belongs to a crashed operation and may be
taken over for recovery.

A lost write is re-read and the change applied again to the fresh record, after a
jittered pause (provision.gpu.retry): for a mapped GPU the digest covers every mapping,
so most losses come from other GPUs' leases and simply go through on the next attempt.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from collections.abc import Callable

from provision.errors import ConflictError
from provision.gpu.record import IDLE, LeaseRecord, parse_records, write_record
from provision.gpu.register import Register
from provision.gpu.retry import OTHER, Retrier, cause, exhausted


class LeaseBusy(ConflictError):
    """Another operation holds the GPU's lease."""

    def __init__(self, message: str, record: LeaseRecord, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.record = record


def this_owner() -> str:
    """user@host:pid of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """False when owner names a process on this machine that no longer exists."""
    if not owner or ":" not in owner or "@" not in owner:
        return True
    who, pid_text = owner.rsplit(":", 1)
    if who.split("@", 1)[1] != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class GpuLease:
    """The lease of one GPU in one register."""

    def __init__(
        self,
        register: Register,
        gpu: str,
        *,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        stale_after: float = 1800.0,
        alive: Callable[[str | None], bool] = owner_alive,
        retry: Retrier | None = None,
    ) -> None:
        self.register = register
        self.retry = retry or Retrier()
        self.gpu = gpu
        self.owner = owner or this_owner()
        self.clock = clock
        self.stale_after = stale_after
        self.alive = alive

    def read(self) -> LeaseRecord:
        """The current record (an idle, holderless one when there is none)."""
        text, _ = self.register.read()
        return parse_records(text).get(self.gpu, LeaseRecord())

    def abandoned(self, record: LeaseRecord) -> bool:
        """True when record's operation was left by a process that is gone."""
        if not record.busy:
            return False
        if not self.alive(record.owner):
            return True
        return self.clock() - record.time > self.stale_after

    def update(self, change: Callable[[LeaseRecord], LeaseRecord | None]) -> LeaseRecord:
        """Compare-and-set: apply change to the current record until the write sticks.

        change may raise (e.g. LeaseBusy) after seeing the current record; it is called
        again with fresh data whenever another writer got in between. After the last
        attempt: ConflictError (exit 4) if this GPU's record itself kept changing, else
        ApiError (the file kept changing for other mappings).
        """
        seen: LeaseRecord | None = None
        for attempt in range(self.retry.attempts):
            if attempt:
                self.retry.pause(attempt - 1)
            text, digest = self.register.read()
            seen = parse_records(text).get(self.gpu, LeaseRecord())
            new = change(seen)
            if new is None:
                return seen
            new = new.with_(time=self.clock())
            if self.register.write(write_record(text, self.gpu, new), digest):
                return new
        last = cause(seen, self.read()) if seen is not None else OTHER
        raise exhausted(f"the lease of {self.gpu}", self.register.where, last, self.retry.attempts)

    def begin(self, **fields: object) -> LeaseRecord:
        """Start an operation: refuse with LeaseBusy if another live one is under way."""
        op = uuid.uuid4().hex[:12]

        def change(current: LeaseRecord) -> LeaseRecord:
            if current.busy and not self.abandoned(current):
                raise self.busy_error(current)
            if current.busy:
                raise LeaseBusy(
                    f"GPU {self.gpu}: operation {current.op} was interrupted in phase "
                    f"{current.phase}",
                    current,
                    hint=f"run `aihost gpu recover {self.gpu}` to finish or roll it back",
                )
            return current.with_(op=op, owner=self.owner, **fields)

        return self.update(change)

    def busy_error(self, current: LeaseRecord) -> LeaseBusy:
        """The error naming the operation that holds the lease."""
        age = max(0.0, self.clock() - current.time)
        return LeaseBusy(
            f"GPU {self.gpu} is busy: operation {current.op} by {current.owner} "
            f"(phase {current.phase}, {age:.0f} s ago, moving it to "
            f"{current.target_name or current.target})",
            current,
            hint="wait for it with --wait, or try again when it is done",
        )

    def advance(self, op_id: str, **fields: object) -> LeaseRecord:
        """Record progress of op_id; ConflictError if it no longer owns the lease."""

        def change(current: LeaseRecord) -> LeaseRecord:
            if current.op != op_id:
                raise ConflictError(
                    f"GPU {self.gpu}: operation {op_id} lost its lease (now {current.op or 'none'})"
                )
            return current.with_(**fields)

        return self.update(change)

    def finish(self, op: str, holder: int | None, holder_name: str | None) -> LeaseRecord:
        """End op, leaving holder as the GPU's holder."""
        return self.advance(
            op,
            op=None,
            phase=IDLE,
            holder=holder,
            holder_name=holder_name,
            source=None,
            target=None,
            target_name=None,
            source_was_running=False,
            owner=None,
        )

    def take_over(self, record: LeaseRecord) -> LeaseRecord:
        """Adopt an abandoned operation so this process can recover it."""

        def change(current: LeaseRecord) -> LeaseRecord:
            if current.op != record.op:
                raise ConflictError(f"GPU {self.gpu}: the lease changed while recovering")
            if not self.abandoned(current):
                raise self.busy_error(current)
            return current.with_(owner=self.owner)

        return self.update(change)
