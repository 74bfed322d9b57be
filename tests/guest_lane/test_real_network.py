"""A static IP in the real Debian 12 guest (cloud-init 22.4, ifupdown), delivered in aihost's
cidata ISO: the guest comes up with it, and a changed IP reaches it with the restart
`vm up` makes (same instance-id: the user-data's `updates` has cloud-init apply the
network-config at every boot). QEMU's NIC carries the simulated VM's MAC, which the
network-config names; the addresses are QEMU user networking's (10.0.2.0/24, gateway
10.0.2.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lane import Lane

pytestmark = [pytest.mark.slow, pytest.mark.guest]


def _up(lane: Lane, ip: str) -> tuple[dict[str, Any], float]:
    vm = {"runtime": "none", "network": {"ip": f"{ip}/24", "gateway": "10.0.2.2"}}
    result, took = lane.up(vm, output="json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), took


def _guest_ipv4(lane: Lane) -> list[str]:
    out = lane.guest().exec(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).out
    return [line.split()[3] for line in out.splitlines() if " inet " in line]


def test_a_static_ip_comes_up_and_a_changed_one_follows_the_restart(lane: Lane) -> None:
    made, took = _up(lane, "10.0.2.50")
    print(f"\nguest lane: vm up with a static IP took {took:.0f} s")
    assert made["address"] == "10.0.2.50", made
    assert not [w for w in made["warnings"] if "static IP" in w], made["warnings"]
    assert _guest_ipv4(lane) == ["10.0.2.50/24"]
    route = lane.guest().exec(["ip", "-4", "route", "show", "default"]).out
    assert "via 10.0.2.2 dev eth0" in route, route
    moved, took = _up(lane, "10.0.2.60")
    print(f"\nguest lane: vm up with a changed IP (restart) took {took:.0f} s")
    assert "restart" in moved["applied"], moved
    assert moved["address"] == "10.0.2.60", moved
    assert _guest_ipv4(lane) == ["10.0.2.60/24"]
    # the same instance: cloud-init's record of it, and aihost's first boot done once
    guest = lane.guest()
    assert guest.read_file("/var/lib/cloud/data/instance-id") == "aihost-lane-g1\n"
    assert guest.read_file("/var/lib/aihost/firstboot-done") == "aihost-lane-g1\n"
    log = guest.read_file("/var/log/cloud-init-output.log") or ""
    assert log.count("aihost: first boot of lane done") == 1, log[-2000:]
