"""`aihost gpu map`: the cluster PCI resource mapping, built from the node's hardware.

An update sends the mapping's full `map` with the digest it read (pve-manager
`PVE/API2/Cluster/Mapping/PCI.pm` `update` requires `map` and keeps keys it is not sent,
such as the description holding the GPU's lease). The digest covers every mapping, so a
lost write is re-read and tried again (provision.gpu.retry).
"""

from __future__ import annotations

from typing import Any

from provision.errors import ApiError, InputError
from provision.gpu.context import GpuContext
from provision.gpu.register import DIGEST_MISMATCH
from provision.gpu.retry import OTHER, Retrier, exhausted
from provision.pve.api import Api
from provision.pve.hardware import PciDevice, functions_of, nvidia_gpus, read_pci
from provision.pve.mapping import Mapping, all_mappings
from provision.pve.pci import map_entry_fields, map_entry_slot, pci_slot


def find_card(ctx: GpuContext, pci: str | None) -> PciDevice:
    """The GPU's function 0 on its node: from --pci / the inventory, else by model name."""
    devices = read_pci(ctx.client, ctx.node)
    address = pci or ctx.gpu.pci
    if address:
        slot = pci_slot(address)
        found = [d for d in functions_of(devices, slot) if d.is_gpu]
        if not found:
            raise InputError(
                f"no GPU at {slot} on node {ctx.node}", hint=_candidates(nvidia_gpus(devices))
            )
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


def same_model(model: str, card_name: str) -> bool:
    """True when the hardware listing's card name is the inventory's model."""
    return _squash(model) in _squash(card_name)


def _candidates(cards: list[PciDevice]) -> str:
    if not cards:
        return "the node lists no NVIDIA GPU"
    return "NVIDIA GPUs there: " + ", ".join(f"{c.slot} ({c.name})" for c in cards)


def _refuse_wrong_card(ctx: GpuContext, card: PciDevice) -> None:
    """InputError when the card is not GPU ctx's model or another mapping names it."""
    model = ctx.gpu.model
    if model and not same_model(model, card.name):
        raise InputError(
            f"the card at {card.slot} on {ctx.node} is '{card.name}' ({card.vendor_device}), "
            f"not GPU {ctx.name}'s model '{model}'",
            hint="check --pci (or the inventory's model:), or pass --force",
        )
    rows = all_mappings(ctx.client)
    for row in rows:
        if row.get("id") == ctx.gpu.mapping:
            continue
        for text in row.get("map") or []:
            node = map_entry_fields(str(text)).get("node")
            if node == ctx.node and map_entry_slot(str(text)) == pci_slot(card.slot):
                raise InputError(
                    f"{card.slot} on {ctx.node} is already mapped as '{row.get('id')}'",
                    hint=f"one card, one mapping: use GPU {row.get('id')}'s mapping or "
                    "pass --force",
                )


def map_entry(ctx: GpuContext, card: PciDevice) -> str:
    """The mapping's map entry for the card, all functions, as Proxmox checks it at start."""
    entry = f"node={ctx.node},path={card.slot},id={card.vendor_device}"
    if card.subsystem:
        entry += f",subsystem-id={card.subsystem}"
    if card.iommugroup >= 0:
        entry += f",iommugroup={card.iommugroup}"
    return entry


def mapping_exists(client: Api, mapping_id: str) -> bool:
    """True when the cluster has a PCI mapping of that name."""
    return Mapping(client, mapping_id).find() is not None


def map_gpu(
    ctx: GpuContext,
    pci: str | None = None,
    *,
    card: PciDevice | None = None,
    missing: bool = False,
    retry: Retrier | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Create or update the mapping of a mapped GPU so API tokens can attach it.

    A card that is not the inventory's model, or that another mapping already names on
    this node, is refused unless force (re-pointing a mapping silently would hand one VM
    another VM's card).

    card and missing let a caller that already read the hardware and the mapping
    (vm up's planning) skip reading them again. A write that lost to another writer
    (changed file, or the mapping created meanwhile) is re-read and tried again.
    """
    if not ctx.gpu.mapping:
        raise InputError(
            f"GPU {ctx.name} is configured by raw pci: address; give it mapping: NAME in the "
            "inventory first (then tokens can attach it; raw addresses need root@pam)",
        )
    if card is None:
        card = find_card(ctx, pci)
        if not force:
            _refuse_wrong_card(ctx, card)
    entry = map_entry(ctx, card)
    retry = retry or Retrier()
    for attempt in range(retry.attempts):
        if attempt:
            retry.pause(attempt - 1)
        action = _map_once(ctx, ctx.gpu.mapping, entry, assume_missing=missing and not attempt)
        if action:
            return {"gpu": ctx.name, "mapping": ctx.gpu.mapping, "action": action, "map": entry}
    raise exhausted(
        f"PCI mapping '{ctx.gpu.mapping}'", "the cluster's mapping/pci.cfg", OTHER, retry.attempts
    )


def _map_once(ctx: GpuContext, mapping_id: str, entry: str, *, assume_missing: bool) -> str | None:
    """One read-modify-write of the mapping: the action taken, or None when it lost."""
    mapping = Mapping(ctx.client, mapping_id)
    current = None if assume_missing else mapping.find()
    if current is None:
        try:
            mapping.create([entry])
        except ApiError as exc:
            if "already defined" in exc.message:
                return None
            raise
        return "created"
    entries = [str(e) for e in (current.get("map") or [])]
    others = [e for e in entries if f"node={ctx.node}," not in f"{e},"]
    if sorted([*others, entry]) == sorted(entries):
        return "unchanged"
    try:
        mapping.write([*others, entry], {}, current.get("digest"))
    except ApiError as exc:
        if DIGEST_MISMATCH.search(exc.message):
            return None
        raise
    return "updated"
