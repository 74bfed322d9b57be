"""`pvesm path VOLID` on the simulated node's shell, as pve-storage answers it.

pve-storage PVE/CLI/pvesm.pm `path` checks `volume` against the `pve-volume-id` format
(Plugin.pm `parse_volume_id`), then PVE::Storage::path: `storage_config` ("storage 'X'
does not exist") and the storage plugin's `path`. File storages (Plugin.pm
`filesystem_path`: `parse_volname`, then `get_subdir`) print `<path>/<content dir>/<name>`
whether or not the file exists; LVM storages refuse anything but their own volume names
(Plugin.pm `parse_lvm_name`, LVMPlugin.pm `parse_volname`). An error is what an uncaught
die prints, on stderr, with perl's exit status 255; a parameter error carries the usage.
"""

from __future__ import annotations

import re
from typing import Any

FILE_TYPES = {"dir", "nfs", "cifs", "cephfs", "glusterfs", "btrfs"}
LVM_TYPES = {"lvm", "lvmthin"}
_VOLID = re.compile(r"^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$", re.IGNORECASE)
_SUBDIRS = {
    "images": "images",
    "iso": "template/iso",
    "vztmpl": "template/cache",
    "backup": "dump",
    "snippets": "snippets",
    "import": "import",
}
# Plugin.pm parse_volname, with Storage.pm's extension patterns (OVA contents left out).
_DIR_VOLNAMES = [
    ("images", re.compile(r"^(\d+)/(\S+)$")),
    ("iso", re.compile(r"^iso/([^/]+\.(?:iso|img))$", re.IGNORECASE)),
    (
        "vztmpl",
        re.compile(r"^vztmpl/([^/]+\.(?:tar(?!\.)|tar\.(?:gz|xz|zst|bz2)))$", re.IGNORECASE),
    ),
    ("backup", re.compile(r"^backup/([^/]+\.(?:tgz|(?:tar|vma)(?:\.(?:gz|lzo|zst))?))$")),
    ("snippets", re.compile(r"^snippets/([^/]+)$")),
    ("import", re.compile(r"^import/([ a-zA-Z0-9\-.+=_]+\.(?:ova|ovf|qcow2|raw|vmdk))$")),
]
_USAGE = "pvesm path <volume>\n"
Answer = tuple[int, str, str]


def run_pvesm(storages: dict[str, dict[str, Any]], args: list[str]) -> Answer:
    """(exit status, stdout, stderr) of `pvesm ARGS` for the world's storages."""
    if not args or args[0] != "path":
        what = f"pvesm {args[0]}" if args else None
        reason = f"ERROR: unknown command '{what}'\n" if what else "ERROR: no command specified\n"
        return 255, "", reason + "USAGE: pvesm <COMMAND> [ARGS] [OPTIONS]\n"
    if len(args) < 2:
        return 255, "", "400 not enough arguments\n" + _USAGE
    if len(args) > 2:
        return 255, "", "400 too many arguments\n" + _USAGE
    try:
        return 0, storage_path(storages, args[1]) + "\n", ""
    except PvesmError as exc:
        return 255, "", str(exc)


class PvesmError(Exception):
    """A die() of pve-storage; str() is the text it prints (newline-terminated)."""


def storage_path(storages: dict[str, dict[str, Any]], volid: str) -> str:
    """PVE::Storage::path of a volume id (the file need not exist)."""
    match = _VOLID.match(volid)
    if match is None:
        raise PvesmError(
            "400 Parameter verification failed.\n"
            f"volume: invalid format - unable to parse volume ID '{volid}'\n" + _USAGE
        )
    sid, volname = match.group(1), match.group(2)
    spec = storages.get(sid)
    if spec is None:
        raise PvesmError(f"storage '{sid}' does not exist\n")
    kind = spec.get("type", "dir")
    if kind in LVM_TYPES:
        return _lvm_path(spec, volname)
    vtype, name = _volname(kind, volname)
    path = spec.get("path")
    if not path:
        raise PvesmError("storage definition has no path\n")
    subdir = f"{path}/{_SUBDIRS[vtype]}"
    if vtype == "images":
        subdir += f"/{volname.split('/', 1)[0]}"
    return f"{subdir}/{name}"


_NAMES = {"zfspool": "zfs", "rbd": "rbd"}


def volume_type(storages: dict[str, dict[str, Any]], volid: str) -> str:
    """The content type PVE::Storage::parse_volname gives a well-formed volume id
    (`storage_config`, then the storage plugin's `parse_volname`); PvesmError as they die."""
    sid, _, volname = volid.partition(":")
    spec = storages.get(sid)
    if spec is None:
        raise PvesmError(f"storage '{sid}' does not exist\n")
    kind = spec.get("type", "dir")
    if kind in LVM_TYPES:
        _lvm_path(spec, volname)
        return "images"
    return _volname(kind, volname)[0]


def _volname(kind: str, volname: str) -> tuple[str, str]:
    if kind not in FILE_TYPES:
        raise PvesmError(f"unable to parse {_NAMES.get(kind, kind)} volume name '{volname}'\n")
    return _dir_volname(volname)


def _dir_volname(volname: str) -> tuple[str, str]:
    for vtype, pattern in _DIR_VOLNAMES:
        match = pattern.match(volname)
        if match:
            return vtype, match.groups()[-1]
    raise PvesmError(f"unable to parse directory volume name '{volname}'\n")


def _lvm_path(spec: dict[str, Any], volname: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9\-_.]*[a-z0-9]", volname, re.IGNORECASE):
        raise PvesmError(f"lvm name '{volname}' contains illegal characters\n")
    if not re.fullmatch(r"(?:vm|base)-\d+-\S+", volname):
        raise PvesmError(f"unable to parse lvm volume name '{volname}'\n")
    return f"/dev/{spec.get('vgname', 'pve')}/{volname}"
