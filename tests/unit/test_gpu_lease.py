"""The lease record and its compare-and-set register (in-memory register, fake clock)."""

from __future__ import annotations

import hashlib
import threading

import pytest

from provision.errors import ConflictError
from provision.gpu.lease import GpuLease, LeaseBusy
from provision.gpu.record import LeaseRecord, parse_records, write_record


class MemoryRegister:
    """A register with Proxmox's digest semantics."""

    where = "memory"

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.lock = threading.Lock()
        self.writes = 0

    def read(self) -> tuple[str, str | None]:
        with self.lock:
            return self.text, hashlib.sha1(self.text.encode()).hexdigest()

    def write(self, text: str, digest: str | None) -> bool:
        with self.lock:
            if digest != hashlib.sha1(self.text.encode()).hexdigest():
                return False
            self.text = text
            self.writes += 1
            return True


def test_record_lines_keep_the_users_own_notes():
    notes = "My node. Do not unplug.\n\nRack 2"
    text = write_record(notes, "rtx4090", LeaseRecord(holder=120, holder_name="llm-box"))
    assert text.startswith("My node. Do not unplug.\n\nRack 2\n")
    assert parse_records(text)["rtx4090"] == LeaseRecord(holder=120, holder_name="llm-box")
    text = write_record(text, "rtx3060", LeaseRecord(holder=121))
    assert set(parse_records(text)) == {"rtx4090", "rtx3060"}
    assert write_record(text, "rtx4090", None).count("aihost-lease") == 1


def test_garbage_lines_are_ignored():
    assert parse_records("aihost-lease x: {not json}\nhello") == {}


def test_begin_then_second_begin_is_refused_with_the_operation():
    register = MemoryRegister()
    first = GpuLease(register, "g", owner="a@h:1", alive=lambda _o: True, clock=lambda: 100.0)
    second = GpuLease(register, "g", owner="b@h:2", alive=lambda _o: True, clock=lambda: 101.0)
    record = first.begin(phase="planning", target=121, target_name="box")
    with pytest.raises(LeaseBusy) as busy:
        second.begin(phase="planning")
    assert busy.value.exit_code == 4
    assert record.op in str(busy.value)
    assert "a@h:1" in str(busy.value)


def test_finish_frees_the_lease_and_sets_the_holder():
    register = MemoryRegister()
    lease = GpuLease(register, "g", owner="a@h:1")
    record = lease.begin(phase="planning")
    lease.advance(str(record.op), phase="stopping", source=100)
    done = lease.finish(str(record.op), 121, "box")
    assert not done.busy and done.holder == 121
    assert lease.begin(phase="planning").busy


def test_advance_by_a_stranger_is_refused():
    lease = GpuLease(MemoryRegister(), "g", owner="a@h:1")
    lease.begin(phase="planning")
    with pytest.raises(ConflictError, match="lost its lease"):
        lease.advance("someone-else", phase="stopping")


def test_dead_owner_on_this_machine_makes_the_operation_abandoned():
    register = MemoryRegister()
    crashed = GpuLease(register, "g", owner="a@h:1", alive=lambda _o: True)
    crashed.begin(phase="stopping")
    survivor = GpuLease(register, "g", owner="b@h:2", alive=lambda owner: owner != "a@h:1")
    record = survivor.read()
    assert survivor.abandoned(record)
    assert survivor.take_over(record).owner == "b@h:2"


def test_old_operation_of_an_unknown_machine_is_abandoned_after_the_stale_time():
    register = MemoryRegister()
    now = [1000.0]
    GpuLease(register, "g", owner="a@elsewhere:1", clock=lambda: now[0]).begin(phase="stopping")
    lease = GpuLease(register, "g", owner="b@h:2", clock=lambda: now[0], stale_after=60)
    assert not lease.abandoned(lease.read())
    now[0] += 61
    assert lease.abandoned(lease.read())


def test_many_threads_racing_exactly_one_wins():
    register = MemoryRegister()
    barrier = threading.Barrier(8)
    winners, losers = [], []

    def race(i: int) -> None:
        lease = GpuLease(register, "g", owner=f"u@h:{i}", alive=lambda _o: True)
        barrier.wait()
        try:
            winners.append(lease.begin(phase="planning").op)
        except LeaseBusy:
            losers.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(losers) == 7
