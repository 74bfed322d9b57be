"""The guest model's turns at a node's model store (provision/sim/store_turns.py), as
aihost-state store-lock makes real guests take them: in the order their models phases
begin, each after the ones before it are done, finding their models in the store; the
holder named at each moment of the wait; a VM whose fetch ended before another's began
is no wait, only stored bytes; another store is no queue."""

from __future__ import annotations

from typing import Any

from test_render_store import _stored

from provision.cloudinit import render_user_data
from provision.sim.guest_models import model_bytes
from provision.sim.store_turns import stored_bytes, turn

SIZE = model_bytes("llama3.1:8b")  # 4.92 GB
DURATIONS = {"guest_runtime": 10.0, "guest_pull_s_per_gb": 2.0}  # 9.84 s of download
FETCH = SIZE * 2.0 / 10**9


def _vm(name: str, began: float, store: str = "/srv/models", size: int = SIZE) -> dict:
    user_data = render_user_data(_stored(), "box").text.replace(
        "hostname: box", f"hostname: {name}"
    )
    return {
        "node": "pve1",
        "status": "running",
        "guest": {
            "user_data": user_data,
            "instance_id": f"aihost-{name}-g1",
            "first_boot_at": began,
            "models_pull": {
                "store": store,
                "models": {"llama3.1:8b": size},
                "stored": {"llama3.1:8b": 0},
                "stored_bytes": 0,
            },
        },
    }


def _world(**vms: dict[str, Any]) -> dict[str, Any]:
    return {"vms": {str(100 + i): vm for i, vm in enumerate(vms.values())}}


def test_three_first_boots_at_once_take_turns_in_order():
    a, b, c = _vm("a", 1000.0), _vm("b", 1001.0), _vm("c", 1002.0)
    world = _world(a=a, b=b, c=c)
    ta = turn(world, DURATIONS, a)
    assert (ta.wait_until, ta.holders) == (10.0, ())  # first: its models phase at once
    # a fetches from 1010 (after its runtime phase) to 1010 + FETCH; b then finds the
    # model stored (no download) and is done at once; c waits for a too, and b's turn
    # ends when a's does.
    tb, tc = turn(world, DURATIONS, b), turn(world, DURATIONS, c)
    a_done = 1010.0 + FETCH
    assert tb.wait_until == a_done - 1001.0
    assert tb.holder(9.5) == "a (instance aihost-a-g1, pid 100)"
    assert tb.holder(a_done - 1001.0) is None
    assert stored_bytes(b["guest"]["models_pull"], tb) == SIZE
    assert tc.wait_until == a_done - 1002.0
    # b holds the lock for no time at all (nothing to fetch): c is shown waiting for a
    assert [(until, who.split(" ")[0]) for until, who in tc.holders] == [
        (a_done - 1002.0, "a"),
        (a_done - 1002.0, "b"),
    ]
    assert tc.holder(5.0) == "a (instance aihost-a-g1, pid 100)"


def test_a_fetch_that_ended_before_is_stored_bytes_not_a_wait():
    a, b = _vm("a", 1000.0), _vm("b", 1100.0)
    tb = turn(_world(a=a, b=b), DURATIONS, b)
    assert (tb.wait_until, tb.holders) == (10.0, ())  # its own models phase start
    assert stored_bytes(b["guest"]["models_pull"], tb) == SIZE


def test_another_store_is_no_queue():
    a, b = _vm("a", 1000.0), _vm("b", 1001.0, store="/srv/other")
    tb = turn(_world(a=a, b=b), DURATIONS, b)
    assert tb.holders == () and stored_bytes(b["guest"]["models_pull"], tb) == 0
