"""The inventory: the user's source of truth (hosts, GPUs, VMs, models)."""

from provision.inventory.loader import load_inventory, parse_inventory
from provision.inventory.model import Gpu, Host, Inventory, Vm

__all__ = ["Gpu", "Host", "Inventory", "Vm", "load_inventory", "parse_inventory"]
