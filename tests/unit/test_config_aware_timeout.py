"""aihost's copy of qemu-server's `config_aware_timeout` (src/PVE/QemuServer/Helpers.pm),
table-driven from the Perl function's cases, and the planner's floor built on it."""

from __future__ import annotations

import pytest

from provision.plan.model import Change
from provision.plan.vmplan import config_after
from provision.pve.vm import start_timeout
from provision.pve.vmconfig import config_aware_timeout, memory_mib

# (config, timeout) as the Perl sub of qemu-server 9.2.6 (commit e6352be67f70) returns
# them, run with perl on these hashes: 30 s or int(MiB / 1024) above 30720 MiB; x4 with
# any /^hostpci[0-9]+$/ key; >= 150 with a true `hugepages`; + 5 per /^net\d+/ key.
CASES = [
    ({}, 30),
    ({"memory": "30720"}, 30),
    ({"memory": "30721"}, 30),
    ({"memory": "32768"}, 32),
    ({"memory": "98304"}, 96),
    ({"memory": "2048", "hostpci0": "x"}, 120),
    ({"memory": "98304", "hostpci0": "x"}, 384),
    ({"memory": "24576", "hostpci0": "x", "hostpci1": "y"}, 120),
    ({"memory": "2048", "hugepages": "2"}, 150),
    ({"memory": "98304", "hugepages": "1024", "hostpci0": "x"}, 384),
    ({"memory": "4096", "hugepages": "any", "hostpci0": "x"}, 150),
    ({"memory": "2048", "net0": "a"}, 35),
    ({"memory": "2048", "net0": "a", "net1": "b", "net2": "c"}, 45),
    ({"memory": "98304", "net0": "a", "hostpci0": "x"}, 389),
    ({"memory": "8192", "net0": "a", "hostpci0": "x", "hugepages": "2"}, 155),
    ({"memory": "current=65536", "hostpci0": "x"}, 256),
    ({"memory": "2048", "hostpcix": "x", "netx": "y", "hostpci": "z"}, 30),
]


@pytest.mark.parametrize(("config", "expected"), CASES)
def test_config_aware_timeout_matches_qemu_server(config, expected):
    assert config_aware_timeout(config) == expected


@pytest.mark.parametrize(
    ("value", "mib"), [(None, 512), ("", 512), ("4096", 4096), ("current=65536", 65536)]
)
def test_memory_is_read_as_qemu_server_does(value, mib):
    assert memory_mib(value) == mib


def test_the_sim_and_aihost_agree_on_every_case():
    from provision.sim.vmconfig import config_aware_timeout as sim_timeout

    for config, expected in CASES:
        assert sim_timeout(config) == expected, config


def test_the_planner_raises_the_timeout_to_the_config_being_started():
    from provision.plan.desired import DesiredVm

    desired = DesiredVm(
        name="b",
        host_name="h",
        node="n",
        vmid=None,
        template="t",
        image=None,
        disk_storage="s",
        disk_gb=40,
        config={},
        start_timeout=60,
    )
    template = {"memory": "2048", "net0": "virtio,bridge=vmbr0", "digest": "x"}
    changes = [Change("memory", "2048", "16384"), Change("hostpci0", None, "mapping=g")]
    assert start_timeout(desired.start_timeout, config_after(template, changes)) == 125
    gone = [Change("net0", "virtio,bridge=vmbr0", None)]
    assert start_timeout(desired.start_timeout, config_after(template, gone)) == 60  # own rule
