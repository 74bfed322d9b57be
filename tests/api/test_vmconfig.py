"""Property strings and semantic hostpci comparison (no perpetual diffs, no false sameness)."""

from __future__ import annotations

import pytest

from provision.pve.pci import normalize_hostpci
from provision.pve.vmconfig import format_property_string, is_true, parse_property_string


def test_parse_default_key_and_pairs():
    assert parse_property_string("local-lvm:vm-100-disk-0,size=64G", "file") == {
        "file": "local-lvm:vm-100-disk-0",
        "size": "64G",
    }
    assert parse_property_string("host=0000:01:00,pcie=1", "host") == {
        "host": "0000:01:00",
        "pcie": "1",
    }


def test_parse_without_default_key_keeps_bare_flags():
    assert parse_property_string("virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1") == {
        "virtio": "BC:24:11:00:00:01",
        "bridge": "vmbr0",
        "firewall": "1",
    }
    assert parse_property_string("virtio,bridge=vmbr0") == {"virtio": "", "bridge": "vmbr0"}


def test_parse_skips_empty_items_and_values_may_contain_equals():
    assert parse_property_string("user=local:snippets/a.yaml,,meta=x=y", None) == {
        "user": "local:snippets/a.yaml",
        "meta": "x=y",
    }


def test_format_round_trip_and_order():
    value = "local-lvm:vm-100-disk-0,discard=on,size=64G"
    parsed = parse_property_string(value, "file")
    assert format_property_string(parsed, "file") == value
    assert (
        format_property_string({"size": "1G", "file": "x:y", "iothread": True}, "file", ["size"])
        == "x:y,size=1G,iothread=1"
    )
    assert format_property_string({"virtio": "", "bridge": "vmbr0", "tag": None}) == (
        "virtio,bridge=vmbr0"
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("0000:01:00,pcie=1", "pcie=1,host=0000:01:00"),  # key order, host= written
        ("01:00,pcie=on", "0000:01:00,pcie=1"),  # domain prefix, boolean spelling
        ("0000:01:00,pcie=1,rombar=1", "0000:01:00,pcie=yes"),  # default rombar
        ("0000:01:00,pcie=0", "0000:01:00"),  # default pcie
        ("0000:01:00,driver=vfio,x-vga=off", "0000:01:00"),  # PVE 9.1 default driver
        ("0000:0A:00,pcie=1", "0000:0a:00,pcie=true"),  # hex case
        ("mapping=rtx4090,pcie=1", "pcie=1,mapping=rtx4090"),
        ("0000:01:00,vendor-id=0x10DE", "0000:01:00,vendor-id=0x10de"),
    ],
)
def test_hostpci_same(a, b):
    assert normalize_hostpci(a) == normalize_hostpci(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("0000:01:00,pcie=1", "0000:02:00,pcie=1"),
        ("0000:01:00,pcie=1", "0000:01:00"),
        ("0000:01:00,pcie=1", "0000:01:00.0,pcie=1"),  # all functions vs one
        ("mapping=rtx4090,pcie=1", "mapping=rtx3060,pcie=1"),
        ("0000:01:00,rombar=0", "0000:01:00"),
        ("0000:01:00;0000:02:00", "0000:02:00;0000:01:00"),  # alternatives keep their order
    ],
)
def test_hostpci_different(a, b):
    assert normalize_hostpci(a) != normalize_hostpci(b)


def test_normalized_hostpci_is_a_valid_value():
    assert normalize_hostpci("pcie=on,host=01:00") == "0000:01:00,pcie=1"
    assert normalize_hostpci("pcie=1,mapping=gpu0,x-vga=1") == "mapping=gpu0,pcie=1,x-vga=1"


def test_is_true():
    assert [is_true(v) for v in (1, "1", "on", "YES", True, "true")] == [True] * 6
    assert [is_true(v) for v in (0, "0", "off", None, "", False)] == [False] * 6
