"""Read a NoCloud `cidata` ISO the way the guest's cloud-init finds its files (read-only).

cloud-init's NoCloud source accepts a filesystem labelled `cidata` (or `CIDATA`) and reads
`user-data`, `meta-data`, `network-config` and `vendor-data` from its root directory, by
the names Linux shows: Rock Ridge names when present, else Joliet names, else plain
ISO 9660 names translated as Linux's isofs does (lower case, `;1` and a trailing `.`
dropped). So `USER_DAT.;1` appears as `user_dat`, which cloud-init does not read: an ISO
with only 8.3 names gives the guest no user-data, as on a real guest.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

NOCLOUD_FILES = ("user-data", "meta-data", "network-config", "vendor-data")
LABELS = ("cidata", "CIDATA")
MAX_FILE = 16 * 1024 * 1024


def linux_iso9660_name(identifier: str) -> str:
    """A plain ISO 9660 file identifier as Linux shows it (mount option map=normal)."""
    name = identifier
    if name.endswith(".;1"):
        name = name[:-3]
    elif name.endswith(";1"):
        name = name[:-2]
    return name.lower()


def read_cidata_iso(path: Path) -> dict[str, str]:
    """The NoCloud files on a cidata ISO, e.g. {"user-data": ..., "meta-data": ...}.

    Raises ValueError when the file is not an ISO 9660 image or its volume label is not
    cidata; OSError when it cannot be read.
    """
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(path))
    except PyCdlibException as exc:
        raise ValueError(f"{path} is not an ISO 9660 image ({exc})") from None
    try:
        label = iso.pvd.volume_identifier.decode("ascii", "replace").strip(" \x00")
        if label not in LABELS:
            raise ValueError(f"{path} has volume label '{label}', not 'cidata'")
        found: dict[str, str] = {}
        for name, kwargs in _root_files(iso).items():
            if name in NOCLOUD_FILES:
                found[name] = _read(iso, kwargs)
        return found
    except PyCdlibException as exc:
        raise ValueError(f"{path} is not a readable ISO 9660 image ({exc})") from None
    finally:
        iso.close()


def _root_files(iso: Any) -> dict[str, dict[str, str]]:
    """Visible name -> pycdlib lookup arguments, for regular files in the root directory."""
    files: dict[str, dict[str, str]] = {}
    if iso.has_rock_ridge():
        for child in iso.list_children(iso_path="/"):
            if child.is_dir() or child.rock_ridge is None:
                continue
            name = child.rock_ridge.name().decode("utf-8", "replace")
            files[name] = {"rr_path": "/" + name}
        return files
    if iso.has_joliet():
        for child in iso.list_children(joliet_path="/"):
            if child.is_dir():
                continue
            name = child.file_identifier().decode("utf-16-be", "replace").removesuffix(";1")
            files[name] = {"joliet_path": "/" + name}
        return files
    for child in iso.list_children(iso_path="/"):
        if child.is_dir():
            continue
        identifier = child.file_identifier().decode("ascii", "replace")
        files[linux_iso9660_name(identifier)] = {"iso_path": "/" + identifier}
    return files


def _read(iso: Any, kwargs: dict[str, str]) -> str:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, **kwargs)
    data = out.getvalue()[:MAX_FILE]
    return data.decode("utf-8", "replace")
