"""A GPU's identity is one thing however its PCI address is spelled (provision.pve.pci)."""

from __future__ import annotations

import pytest

from provision.errors import InventoryError
from provision.inventory.loader import parse_inventory
from provision.plan.compare import config_changes
from provision.pve.pci import GpuRef, PciAddress, map_entry_fields, map_entry_slot, pci_slot

INVENTORY = """
hosts:
  pve1: {api: sim}
gpus:
  ga: {host: pve1, pci: "%s", vram_gb: 24}
  gb: {host: pve1, pci: "%s", vram_gb: 24}
vms: {}
"""


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("0000:01:00", "01:00.0"),
        ("01:00", "0000:01:00.1"),
        ("0000:01:00.0", "01:00"),
        ("0000:0A:00", "0a:00.0"),
    ],
)
def test_one_card_listed_twice_in_any_spelling_is_refused(first, second):
    with pytest.raises(InventoryError, match="same device as gpus.ga"):
        parse_inventory(INVENTORY % (first, second), "inv.yaml")


def test_two_cards_on_one_host_are_fine():
    inv = parse_inventory(INVENTORY % ("0000:01:00", "02:00.0"), "inv.yaml")
    assert sorted(inv.gpus) == ["ga", "gb"]


def test_a_function_only_entry_of_an_inventory_gpu_is_removed_from_a_vm_without_it():
    gpu = GpuRef.of(parse_inventory(INVENTORY % ("0000:01:00", "02:00"), "i").gpus["ga"])
    actual = {"hostpci0": "0000:01:00.0,pcie=1", "hostpci1": "0000:03:00,pcie=1"}
    changes = config_changes({}, actual, gpus=[gpu])
    assert [(c.key, c.new) for c in changes] == [("hostpci0", None)]  # hostpci1: not ours


@pytest.mark.parametrize(
    ("text", "slot", "full"),
    [
        ("01:00", "0000:01:00", "0000:01:00"),
        ("01:00.0", "0000:01:00", "0000:01:00.0"),
        ("0000:0A:1F.3", "0000:0a:1f", "0000:0a:1f.3"),
    ],
)
def test_an_address_parses_in_any_spelling(text, slot, full):
    address = PciAddress.parse(text)
    assert (address.slot, str(address)) == (slot, full)
    assert pci_slot(text) == slot


@pytest.mark.parametrize("text", ["", "1:0", "0000:01:00.8", "mapping=x", "01:00.0;02:00"])
def test_a_malformed_address_is_refused(text):
    with pytest.raises(ValueError):
        PciAddress.parse(text)


@pytest.mark.parametrize(
    ("ref", "hostpci", "named"),
    [
        (GpuRef(address=PciAddress.parse("01:00")), "0000:01:00,pcie=1", True),
        (GpuRef(address=PciAddress.parse("01:00")), "host=01:00.1", True),
        (GpuRef(address=PciAddress.parse("01:00")), "pcie=1,host=0000:02:00;0000:01:00.0", True),
        (GpuRef(address=PciAddress.parse("01:00.0")), "0000:01:00", True),
        (GpuRef(address=PciAddress.parse("01:00")), "0000:02:00,pcie=1", False),
        (GpuRef(address=PciAddress.parse("01:00")), "mapping=gpu,pcie=1", False),
        (GpuRef(mapping="gpu"), "mapping=gpu,pcie=1", True),
        (GpuRef(mapping="gpu"), "pcie=1,mapping=gpu", True),
        (GpuRef(mapping="gpu"), "mapping=gpu2", False),
        (GpuRef(mapping="gpu"), "0000:01:00", False),
    ],
)
def test_a_hostpci_value_names_a_card(ref, hostpci, named):
    assert ref.named_by(hostpci) is named


def test_the_hostpci_value_attaches_all_functions_as_pcie():
    assert GpuRef(address=PciAddress.parse("01:00")).hostpci_value == "0000:01:00,pcie=1"
    assert GpuRef(mapping="gpu").hostpci_value == "mapping=gpu,pcie=1"
    config = {"hostpci3": "01:00.0", "hostpci0": "0000:01:00", "hostpci1": "02:00", "net0": "x"}
    assert GpuRef(address=PciAddress.parse("01:00")).keys_in(config) == ["hostpci0", "hostpci3"]


def test_map_entries_compare_by_fields_in_long_form():
    a = "node=pve1,path=0000:01:00,id=10de:2684,iommugroup=2,description=x"
    b = "id=10de:2684,path=01:00,node=pve1,iommugroup=2"
    assert map_entry_fields(a) == map_entry_fields(b)
    assert map_entry_slot("node=pve1,path=01:00.0;02:00") == "0000:01:00"
    assert map_entry_slot("node=pve1") is None
