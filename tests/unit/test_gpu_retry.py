"""The retry decision for lease writes under one file-wide digest (plain data, no sleeps).

Proxmox's mapping/pci.cfg has one digest for all mappings (pve-manager
PVE/API2/Cluster/Mapping/PCI.pm): another GPU's lease write makes ours lose. The model
below is that file: several GPUs' registers share one digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from provision.errors import EXIT_API, EXIT_CONFLICT
from provision.gpu.lease import GpuLease, LeaseBusy
from provision.gpu.record import LeaseRecord, parse_records, write_record
from provision.gpu.retry import OTHER, OWN, Backoff, Retrier, cause, exhausted


class PciCfg:
    """mapping/pci.cfg: descriptions by mapping id, one digest for all of them."""

    def __init__(self, *ids: str) -> None:
        self.text = dict.fromkeys(ids, "")
        self.before_write: Callable[[], None] = lambda: None

    def digest(self) -> str:
        return hashlib.sha1(repr(sorted(self.text.items())).encode()).hexdigest()


class SharedRegister:
    """One mapping's description in PciCfg (the digest is the file's)."""

    def __init__(self, cfg: PciCfg, mapping: str) -> None:
        self.cfg, self.mapping, self.where = cfg, mapping, f"mapping {mapping}"

    def read(self) -> tuple[str, str | None]:
        return self.cfg.text[self.mapping], self.cfg.digest()

    def write(self, text: str, digest: str | None) -> bool:
        self.cfg.before_write()
        if digest != self.cfg.digest():
            return False
        self.cfg.text[self.mapping] = text
        return True


def _retrier(slept: list[float], attempts: int = 5) -> Retrier:
    return Retrier(
        Backoff(attempts=attempts, first=0.1, cap=0.3), sleep=slept.append, rand=lambda: 0.5
    )


def _lease(cfg: PciCfg, gpu: str, slept: list[float], attempts: int = 5) -> GpuLease:
    return GpuLease(
        SharedRegister(cfg, gpu),
        gpu,
        owner=f"me@h:{gpu}",
        alive=lambda _o: True,
        clock=lambda: 100.0,
        retry=_retrier(slept, attempts),
    )


def test_delay_is_jittered_growing_and_capped():
    backoff = Backoff(attempts=9, first=0.1, cap=0.3)
    assert [backoff.delay(n, lambda: 1.0) for n in range(4)] == [0.1, 0.2, 0.3, 0.3]
    assert backoff.delay(1, lambda: 0.25) == 0.05
    assert backoff.delay(0, lambda: 0.0) == 0.0
    assert backoff.delay(10_000, lambda: 1.0) == 0.3


def test_cause_compares_this_gpus_record_only():
    mine = LeaseRecord(holder=100)
    assert cause(mine, LeaseRecord(holder=100)) == OTHER
    assert cause(mine, LeaseRecord(holder=101)) == OWN
    assert cause(mine, mine.with_(op="x")) == OWN


def test_after_the_last_attempt_only_an_own_change_is_a_conflict():
    assert exhausted("lease", "m", OWN, 5).exit_code == EXIT_CONFLICT
    error = exhausted("lease", "m", OTHER, 5)
    assert error.exit_code == EXIT_API and "5 times" in error.message


def test_a_write_lost_to_another_gpus_lease_is_retried_after_a_pause():
    cfg, slept = PciCfg("a", "b"), []
    other = _lease(cfg, "b", [])
    fired = []

    def interleave() -> None:  # b's lease is written between a's read and a's write, once
        if not fired:
            fired.append(1)
            other.begin(phase="attaching", target=2)

    cfg.before_write = interleave
    record = _lease(cfg, "a", slept).begin(phase="attaching", target=1)
    assert parse_records(cfg.text["a"])["a"] == record and record.target == 1
    assert parse_records(cfg.text["b"])["b"].target == 2
    assert slept == [0.05]


def test_a_busy_file_exhausts_the_attempts_as_an_api_error_not_a_conflict():
    cfg, slept = PciCfg("a", "b"), []
    cfg.before_write = lambda: cfg.text.update(b=cfg.text["b"] + "x")
    with pytest.raises(Exception) as caught:
        _lease(cfg, "a", slept, attempts=4).begin(phase="attaching")
    assert caught.value.exit_code == EXIT_API  # type: ignore[attr-defined]
    assert slept == [0.05, 0.1, 0.15] and cfg.text["a"] == ""


def test_own_record_changing_every_time_exhausts_as_a_conflict():
    cfg, slept = PciCfg("a"), []
    bumps = iter(range(1, 100))

    def rewrite_own_holder() -> None:
        cfg.text["a"] = write_record("", "a", LeaseRecord(holder=next(bumps)))

    cfg.before_write = rewrite_own_holder
    with pytest.raises(Exception) as caught:
        _lease(cfg, "a", slept, attempts=3).begin(phase="attaching")
    assert caught.value.exit_code == EXIT_CONFLICT  # type: ignore[attr-defined]
    assert "keeps changing under us" in str(caught.value)


def test_an_operation_begun_on_this_gpu_meanwhile_is_refused_at_once():
    cfg, slept = PciCfg("a"), []
    rival = GpuLease(
        SharedRegister(cfg, "a"),
        "a",
        owner="you@h:1",
        alive=lambda _o: True,
        clock=lambda: 100.0,
        retry=_retrier([]),
    )
    cfg.before_write = lambda: (
        setattr(cfg, "before_write", lambda: None),
        rival.begin(phase="attaching"),
    )
    with pytest.raises(LeaseBusy) as busy:
        _lease(cfg, "a", slept).begin(phase="attaching")
    assert busy.value.exit_code == EXIT_CONFLICT and "you@h:1" in str(busy.value)
    assert slept == [0.05]
