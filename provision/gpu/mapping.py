"""`aihost gpu map`: the cluster PCI resource mapping, built from the node's hardware."""

from __future__ import annotations

from typing import Any

from provision.errors import ApiError, InputError
from provision.gpu.context import GpuContext
from provision.gpu.hardware import PciDevice, functions_of, nvidia_gpus, read_pci


def find_card(ctx: GpuContext, pci: str | None) -> PciDevice:
    """The GPU's function 0 on its node: from --pci / the inventory, else by model name."""
    devices = read_pci(ctx.client, ctx.node)
    address = pci or ctx.gpu.pci
    if address:
        slot = address.split(".")[0] if address.count(":") == 2 else f"0000:{address}"
        found = [d for d in functions_of(devices, slot.split(".")[0]) if d.is_gpu]
        if not found:
            raise InputError(f"no GPU at {slot} on node {ctx.node}",
                             hint=_candidates(nvidia_gpus(devices)))
        return found[0]
    cards = nvidia_gpus(devices)
    for hint in (ctx.gpu.model, ctx.name):
        named = [d for d in cards if hint and _squash(hint) in _squash(d.name)]
        if len(named) == 1:
            return named[0]
    if len(cards) != 1:
        raise InputError(
            f"cannot tell which card is GPU {ctx.name} on node {ctx.node}",
            hint="pass --pci ADDRESS; " + _candidates(nvidia_gpus(devices)),
        )
    return cards[0]


def _squash(text: str) -> str:
    """Lower-case letters and digits only: 'GeForce RTX 4090' ~ 'rtx4090'."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _candidates(cards: list[PciDevice]) -> str:
    if not cards:
        return "the node lists no NVIDIA GPU"
    return "NVIDIA GPUs there: " + ", ".join(f"{c.slot} ({c.name})" for c in cards)


def map_entry(ctx: GpuContext, card: PciDevice) -> str:
    """The mapping's map entry for the card, all functions, as Proxmox checks it at start."""
    entry = f"node={ctx.node},path={card.slot},id={card.vendor_device}"
    if card.subsystem:
        entry += f",subsystem-id={card.subsystem}"
    if card.iommugroup >= 0:
        entry += f",iommugroup={card.iommugroup}"
    return entry


def mapping_exists(client: Any, mapping_id: str) -> bool:
    """True when the cluster has a PCI mapping of that name."""
    try:
        client.get(f"/cluster/mapping/pci/{mapping_id}")
    except ApiError as exc:
        if exc.status in (404, 500) and "not found" in exc.message.lower():
            return False
        raise
    return True


def map_gpu(ctx: GpuContext, pci: str | None = None, *, card: PciDevice | None = None,
            missing: bool = False) -> dict[str, Any]:
    """Create or update the mapping of a mapped GPU so API tokens can attach it.

    card and missing let a caller that already read the hardware and the mapping
    (vm up's planning) skip reading them again.
    """
    if not ctx.gpu.mapping:
        raise InputError(
            f"GPU {ctx.name} is configured by raw pci: address; give it mapping: NAME in the "
            "inventory first (then tokens can attach it; raw addresses need root@pam)",
        )
    card = card or find_card(ctx, pci)
    entry = map_entry(ctx, card)
    path = f"/cluster/mapping/pci/{ctx.gpu.mapping}"
    current = None
    if not missing and mapping_exists(ctx.client, ctx.gpu.mapping):
        current = ctx.client.get(path)
    if current is None:
        ctx.client.post("/cluster/mapping/pci", id=ctx.gpu.mapping, map=[entry])
        return {"gpu": ctx.name, "mapping": ctx.gpu.mapping, "action": "created", "map": entry}
    entries = [str(e) for e in (current.get("map") or [])]
    others = [e for e in entries if f"node={ctx.node}," not in f"{e},"]
    if sorted([*others, entry]) == sorted(entries):
        return {"gpu": ctx.name, "mapping": ctx.gpu.mapping, "action": "unchanged", "map": entry}
    params: dict[str, Any] = {"map": [*others, entry]}
    if current.get("digest"):
        params["digest"] = current["digest"]
    ctx.client.put(path, **params)
    return {"gpu": ctx.name, "mapping": ctx.gpu.mapping, "action": "updated", "map": entry}
