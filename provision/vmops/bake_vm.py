"""The VM a bake runs in: made from the recipe's cloud image (import) or template (full
clone), given the bake user-data, started, followed until it powers itself off, and
removed again when the bake fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from provision.cloudinit.render import render_meta_data
from provision.delivery.iso import remove_volumes, upload_iso
from provision.delivery.network import mac_of, needs_network_config, network_config
from provision.delivery.plan import delivery_mode, plan_delivery
from provision.delivery.snippets import remove_snippets, upload_snippets
from provision.errors import AihostError, ApiError, GuestError, InputError, WaitTimeout
from provision.guest.agent import GuestAgent
from provision.guest.firstboot import read_state
from provision.inventory.model import Recipe
from provision.plan.desired import snippet_names
from provision.pve.node import Node
from provision.pve.session import Session
from provision.pve.vm import Vm
from provision.vmops.newid import create_with_free_id

CREATE_TIMEOUT = 1800.0
START_TIMEOUT = 60


def bake_mark(name: str, digest: str) -> str:
    """The description line a bake VM (and the template it becomes) carries."""
    return f"aihost-bake: {name} sha256:{digest}"


def marked_digest(description: object, name: str) -> str | None:
    """The digest a description's bake mark for recipe name records, or None."""
    prefix = f"aihost-bake: {name} sha256:"
    for line in str(description or "").splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    return None


def bake_config(session: Session, recipe: Recipe) -> dict[str, Any]:
    """The bake VM's config (as vm up's for a GPU VM, without the GPU); with the disk
    import when the recipe starts from a cloud image."""
    storage = session.inv.hosts[recipe.host].storage
    network = recipe.network
    ip = "ip=dhcp" if network.ip == "dhcp" else f"ip={network.ip}"
    if network.gateway:
        ip += f",gw={network.gateway}"
    net0 = f"virtio,bridge={network.bridge}" + (f",tag={network.vlan}" if network.vlan else "")
    config = {
        "machine": "q35",
        "bios": "ovmf",
        "efidisk0": f"{storage.disks}:1,efitype=4m,pre-enrolled-keys=0",
        "cpu": "host",
        "agent": "1",
        "cores": str(recipe.cores),
        "memory": str(recipe.memory_gb * 1024),
        "net0": net0,
        "ipconfig0": ip,
    }
    if recipe.image is not None:
        config.update(
            scsihw="virtio-scsi-single",
            boot="order=scsi0",
            scsi0=f"{storage.disks}:0,import-from={recipe.image}",
        )
    return config


def _delivery(
    session: Session, vm: Vm, name: str, recipe: Recipe, user_data: str, digest: str
) -> dict[str, Any]:
    """Put the bake's cloud-init files where the node reads them; the config naming them.
    An ISO's network-config names the bake VM's MAC address, as Proxmox's own does."""
    inv, vm_name = session.inv, f"bake-{name}"
    files = {
        "user-data": user_data.encode(),
        "meta-data": render_meta_data(vm_name, f"aihost-bake-{digest[:16]}").encode(),
    }
    client = session.client(recipe.host)
    if needs_network_config(recipe) and delivery_mode(inv.hosts[recipe.host]) == "iso":
        mac = mac_of(str(vm.config().get("net0", "")))
        network = network_config(recipe, mac) if mac is not None else None
        if network is None:
            raise AihostError(f"bake {name}: VM {vm.vmid} has no MAC address on net0")
        files["network-config"] = network.encode()
    plan = plan_delivery(inv, vm_name, recipe.host, client, files)
    if plan.mode == "snippet":
        upload_snippets(inv, recipe.host, plan.snippets)
        store = inv.hosts[recipe.host].storage
        names = snippet_names(vm_name)
        return {
            "ide2": f"{store.disks}:cloudinit",
            "cicustom": f"user={store.snippets}:snippets/{names['user']},"
            f"meta={store.snippets}:snippets/{names['meta']}",
        }
    if plan.iso is not None and not plan.iso.present:
        upload_iso(Node(client, inv.node_of(recipe.host)), plan.iso)
    return dict(plan.config)  # ipconfig0 and the like are inert without a cloudinit drive


def make_bake_vm(session: Session, name: str, recipe: Recipe, template: Any, mark: str) -> Vm:
    """Create the bake VM (import the image, or full-clone template: a VmInfo)."""
    client = session.client(recipe.host)
    node_name = session.inv.node_of(recipe.host)
    disks = session.inv.hosts[recipe.host].storage.disks
    config = bake_config(session, recipe)

    def post(vmid: int) -> Any:
        if template is not None:
            session.progress(f"bake {name}: cloning template {template.vmid} as {vmid}")
            params: dict[str, Any] = {"name": name, "full": 1, "storage": disks}
            if template.node != node_name:
                params["target"] = node_name
            return (
                Node(client, template.node)
                .vm(template.vmid)
                .clone(vmid, description=mark, **params)
            )
        session.progress(f"bake {name}: creating {vmid} from {recipe.image}")
        return Node(client, node_name).create_vm(vmid=vmid, name=name, description=mark, **config)

    with session.create_lock:
        vmid, upid = create_with_free_id(
            client,
            recipe.vmid,
            post,
            session.progress,
            name,
            node_name,
            again=f"wait for that bake: `aihost template bake {name}` then has nothing to do",
        )
    vm = Node(client, node_name).vm(int(vmid))
    vm.wait(upid, timeout=CREATE_TIMEOUT, what="create the bake VM")
    if template is not None:
        if "efidisk0" in vm.config():  # the template's own: a new value would add a disk
            config.pop("efidisk0")
        vm.write(config, what="configure the bake VM")
    return vm


def configure_and_start(
    session: Session, vm: Vm, name: str, recipe: Recipe, user_data: str, digest: str
) -> None:
    """Deliver the bake user-data, grow the disk to the recipe's size, start the VM."""
    vm.write(
        _delivery(session, vm, name, recipe, user_data, digest), what="attach the bake user-data"
    )
    if _smaller(vm, recipe.disk_gb):
        vm.resize("scsi0", f"{recipe.disk_gb}G")
    session.progress(f"bake {name}: starting VM {vm.vmid}")
    vm.start(START_TIMEOUT)


def _smaller(vm: Vm, gib: int) -> bool:
    size = str(vm.config().get("scsi0", "")).partition("size=")[2].split(",")[0]
    units = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}
    try:
        have = float(size[:-1]) * units[size[-1]] if size and size[-1] in units else 0.0
    except ValueError:
        have = 0.0
    return have < gib


def wait_powered_off(
    session: Session,
    vm: Vm,
    name: str,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until the bake VM powers itself off (the bake succeeded: only then does
    power_state's condition hold); a failed phase in its state file is a GuestError."""
    clock = session.clock
    start = clock()
    agent = GuestAgent(vm, clock=clock, sleep=sleep, may_stop=True)
    delay, said = 0.05, -60.0
    while True:
        if vm.state() == "stopped":
            return clock() - start
        waited = clock() - start
        if waited - said >= 30:
            session.progress(f"bake {name}: VM {vm.vmid} baking ({waited:.0f} s so far)")
            said = waited
        state = read_state(agent) if waited >= 1 else None
        if state is not None and state.status == "failed":
            raise GuestError(
                f"bake {name} failed in the {state.phase} phase: {state.error or 'no error text'}",
                hint="see /var/log/cloud-init-output.log in the bake VM; fix the recipe and re-run",
            )
        if waited >= timeout:
            raise WaitTimeout(
                f"bake {name}: VM {vm.vmid} did not power off within {timeout:.0f} s",
                hint="raise --timeout, or look at the VM's console",
            )
        sleep(min(delay, max(0.0, timeout - waited)))
        delay = min(delay * 2, 5.0)


def detach_bake_data(session: Session, vm: Vm, name: str, recipe: Recipe) -> None:
    """Before the conversion: the template must not boot the bake again (a hand-made
    clone would re-bake and power off), so its cicustom goes and a bake ISO becomes
    Proxmox's own cloud-init drive; the bake's snippets or ISO are removed."""
    config = vm.config()
    disks = session.inv.hosts[recipe.host].storage.disks
    mark = f"aihost-bake: {name} sha256:"  # the template keeps the mark, not the run's lines
    lines = str(config.get("description") or "").splitlines()
    change: dict[str, Any] = {"description": "\n".join(ln for ln in lines if ln.startswith(mark))}
    if "cicustom" in config:
        change["delete"] = "cicustom"
    iso = str(config.get("ide2", "")).split(",")[0]
    if ":iso/" in iso:
        change["ide2"] = f"{disks}:cloudinit"
    vm.write(change, digest=config.get("digest"), what="detach the bake user-data")
    if "cicustom" in config:
        remove_snippets(session.inv, recipe.host, f"bake-{name}")
    if ":iso/" in iso:
        remove_volumes(Node(session.client(recipe.host), vm.node), [iso])


def remove_bake_vm(session: Session, vm: Vm, name: str) -> None:
    """Stop and remove a bake VM that did not become a template."""
    try:
        if vm.state() == "running":
            vm.stop(what="stop the bake VM")
        vm.destroy(what="remove the bake VM")
        session.progress(f"bake {name}: removed the bake VM {vm.vmid}")
    except (ApiError, InputError) as exc:
        session.progress(f"bake {name}: could not remove the bake VM {vm.vmid}: {exc}")
