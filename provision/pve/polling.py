"""When to ask again whether a Proxmox task has ended: a schedule that knows how long
tasks of its type typically take.

Proxmox has no way to wait for a task's end (GET /nodes/{node}/tasks/{upid}/status only
answers running or stopped), so a client polls, and the gap between the task's end and
the poll that sees it is time the user waits for nothing. A schedule that only backs off
(0.05 s doubling to 0.5 s) notices a task of several seconds about 0.25 s late on
average. Knowing a task's typical duration, polls can be few while the end is far and
close together when it is near:

- the first poll is immediate and the next ones back off from 0.05 s as before, so a
  task that ends at once (a config write, a refusal) costs one or two requests;
- before the expected end, the next poll comes after half of the expected remaining
  time (never more than the backoff, never less than 0.05 s), so polls converge on the
  expected end, and the last one before it lands on it (a task that ends when expected
  is seen then, not up to 0.05 s later; at most one poll more);
- after it (the task runs longer than typical), the gap grows with the overshoot (half
  of it, from 0.05 s), capped at 0.5 s.

No gap ever exceeds MAX_DELAY, so a task that ends much earlier or later than typical
is noticed no later than with plain backoff. Task types without a typical duration use
plain backoff.
"""

from __future__ import annotations

FIRST_DELAY = 0.05
MAX_DELAY = 0.5
LEAD = 0.5  # before the expected end: this fraction of the expected remaining time
LAG = 0.5  # after it: this fraction of the time the task has run longer than expected

# Typical durations in seconds of the tasks aihost waits for that take long enough for
# polling to matter: a full clone of a cloud-image template (a few GB on local-lvm), a
# VM's start (QEMU up with OVMF and a passed-through card; the guest's boot is not part
# of the task), a guest's clean shutdown through its agent. They are the figures the
# benchmark calls realistic (bench/simctl.py REALISTIC); a task that takes a different
# time only costs a few more polls (see the module docstring).
TYPICAL_SECONDS: dict[str, float] = {
    "qmclone": 5.0,
    "qmstart": 3.0,
    "qmshutdown": 4.0,
}


def typical_seconds(task_type: str) -> float | None:
    """How long a task of this type (a UPID's type field) typically takes; None: unknown."""
    return TYPICAL_SECONDS.get(task_type)


def next_delay(elapsed: float, previous: float | None, expected: float | None) -> float:
    """Seconds to sleep before the next status poll.

    elapsed: seconds since the wait began; previous: the last sleep (None before the
    first); expected: the task's typical duration (None: plain backoff).
    """
    backoff = FIRST_DELAY if previous is None else min(previous * 2, MAX_DELAY)
    if expected is None:
        return backoff
    remaining = expected - elapsed
    if remaining > 0:
        return min(remaining, max(FIRST_DELAY, min(backoff, remaining * LEAD)))
    return min(MAX_DELAY, max(FIRST_DELAY, -remaining * LAG))
