"""Render a VM's cloud-init user-data (provision.cloudinit.document builds it) and its
NoCloud meta-data. A VM of a template aihost baked gets no apt at first boot when the
image has every package its user-data lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import yaml

from provision.cloudinit.bake import render_bake
from provision.cloudinit.context import build_context
from provision.cloudinit.document import SAFE_LOADER, RenderedUserData, environment, render_document
from provision.cloudinit.escape import yaml_quote
from provision.errors import InputError
from provision.inventory.model import SecretRef
from provision.inventory.secrets import read_secret

if TYPE_CHECKING:
    from provision.inventory.model import Inventory

MASK = "***"


def render_user_data(
    inv: Inventory,
    vm_name: str,
    *,
    distro: str | None = None,
    secret_reader: Callable[[SecretRef, str], str] = read_secret,
    instance_id: str | None = None,
    model_store: bool = True,
) -> RenderedUserData:
    """Render the user-data of inv's VM vm_name; InputError on bad values or templates.
    model_store False leaves the host's model store out (a node without virtiofs)."""
    vm = inv.vm(vm_name)
    store = inv.model_store_of(vm_name) if model_store else None
    tag = store.mapping if store else None
    chosen = distro or vm.distro
    if chosen not in ("ubuntu-24.04", "ubuntu-22.04", "debian-12"):
        raise InputError(
            f"unknown distro {chosen!r}", hint="use ubuntu-24.04, ubuntu-22.04 or debian-12"
        )
    env = environment(inv.templates_dir)
    context, secrets = build_context(vm_name, vm, chosen, secret_reader, instance_id, tag)
    installed = _image_packages(inv, vm.template, chosen)
    text = render_document(env, context, installed)
    masked_context, _ = build_context(
        vm_name, vm, chosen, lambda _ref, _what: MASK, instance_id, tag
    )
    masked = render_document(env, masked_context, installed) if secrets else text
    return RenderedUserData(text=text, secrets=secrets, masked_text=masked)


def render_meta_data(vm_name: str, instance_id: str) -> str:
    """NoCloud meta-data: the instance-id and the hostname."""
    return f"instance-id: {yaml_quote(instance_id)}\nlocal-hostname: {yaml_quote(vm_name)}\n"


def _image_packages(inv: Inventory, template: str | None, distro: str) -> frozenset[str]:
    """The packages a VM's image already has: those its bake recipe's user-data installed
    (none for a template aihost did not bake, or one baked for another distro)."""
    recipe = inv.bake.get(template) if template else None
    if recipe is None or recipe.distro != distro:
        return frozenset()
    baked = yaml.load(render_bake(inv, str(template)).text, Loader=SAFE_LOADER)
    return frozenset(str(p) for p in baked.get("packages") or [])
