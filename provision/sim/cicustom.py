"""The cloud-init drive and its `cicustom` snippets at a VM's start, as qemu-server does it.

qemu-server src/PVE/QemuServer.pm `vm_start_nolock` calls Cloudinit.pm
`apply_cloudinit_config` -> `generate_cloudinit_config`, which runs the generator only for
a drive whose volume name matches `vm-VMID-cloudinit` (QemuConfig `foreach_volume`). Only
the generator (`generate_nocloud` -> `get_custom_cloudinit_files`) reads the snippets: so
without a cloud-init drive `cicustom` is neither read nor checked, the start succeeds and
the guest gets nothing from it. The config write checks only the `pve-qm-cicustom` format
(API2/Qemu.pm `update_vm`: `cicustom` is one of `$cloudinitoptions`, no volume check).
"""

from __future__ import annotations

import re
from pathlib import Path

from provision.sim import pvesm
from provision.sim.fixture import DISK_KEY
from provision.sim.pci import parse_prop
from provision.sim.state import World
from provision.sim.storage import file_path

# Cloudinit.pm get_custom_cloudinit_files reads them in this order.
PARTS = ("network", "user", "meta", "vendor")


_CLOUDINIT_VOLUME = re.compile(r"[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow2|vmdk))?$")


def is_cloudinit_volume(volid: str) -> bool:
    """True for a cloud-init volume, e.g. local-lvm:vm-100-cloudinit or
    tank:100/vm-100-cloudinit.qcow2 (qemu-server QemuServer/Drive.pm `drive_is_cloudinit`)."""
    return bool(_CLOUDINIT_VOLUME.search(volid))


def cloudinit_drive(vmid: str, config: dict[str, str]) -> bool:
    """True when one of the config's drives is the VM's cloud-init volume (Cloudinit.pm
    `generate_cloudinit_config`: `parse_volume_id`, volname =~ /vm-VMID-cloudinit/)."""
    own = re.compile(rf"vm-{re.escape(vmid)}-cloudinit")
    for key, value in config.items():
        if not DISK_KEY.fullmatch(key):
            continue
        _sid, colon, volname = value.split(",")[0].partition(":")
        if colon and own.search(volname):
            return True
    return False


def custom_files(
    state_dir: Path, world: World, config: dict[str, str]
) -> tuple[dict[str, str], str | None]:
    """The snippets' texts by part, or the error the start dies with (Cloudinit.pm
    `get_custom_cloudinit_files` -> `read_cloudinit_snippets_file`: PVE::Storage
    `parse_volname`, "VOLID is not in the snippets directory", then `abs_filesystem_path`
    -> Plugin.pm `activate_volume`: "volume 'VOLID' does not exist")."""
    wanted = parse_prop(config.get("cicustom", ""))
    texts: dict[str, str] = {}
    for part in PARTS:
        volid = wanted.get(part)
        if not volid:
            continue
        try:
            vtype = pvesm.volume_type(world["storages"], volid)
        except pvesm.PvesmError as exc:
            return texts, str(exc).strip()
        if vtype != "snippets":
            return texts, f"{volid} is not in the snippets directory"
        path = file_path(state_dir, world, volid)
        if path is None or not path.is_file():
            return texts, f"volume '{volid}' does not exist"
        texts[part] = path.read_text(encoding="utf-8", errors="replace")
    return texts, None
