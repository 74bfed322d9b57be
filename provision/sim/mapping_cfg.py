"""`mapping/pci.cfg` and `mapping/directory.cfg` as Proxmox keeps them: one section config
file per mapping type (kind "pci" or "dir"), one digest per file.

Followed sources (pve-common f665029e, pve-guest-common 4a8f6cbf, pve-cluster 7091d92e):
- pve-guest-common `src/PVE/Mapping/PCI.pm`: `options` (`map` required; `description`,
  `mdev`, `live-migration-capable` optional), `format_section_header` (a bare "ID" line),
  `lock_pci_config` (an error inside the locked code is re-raised as "ERRMSG: ERR");
  `src/PVE/Mapping/Dir.pm` (kind "dir", file mapping/directory.cfg): `options` (`map`
  required, `description` optional), the same section header and `lock_dir_config`.
- pve-common `src/PVE/SectionConfig.pm`: `parse_config` (the digest is the SHA-1 of the
  whole file, so every write changes every mapping's digest), `write_config` +
  `format_config_line` (required keys first, then optional ones sorted; booleans as 0/1,
  empty strings left out), `check_config` / `check_value` and `delete_from_config`.
- pve-cluster `src/PVE/Cluster.pm` `$cfs_lock`: errors of the locked code pass unchanged.

Each entry is stored as `parse_config` would read it back: `map` a list of strings,
booleans as integers, no empty strings. A section parse_config skips is kept as None
(`$ids->{ID} = undef`): see reread.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from provision.sim.http import ApiFailure, fail, param_fail
from provision.sim.state import World

# PVE::Mapping::PCI::options: {} is required, the others {optional => 1}.
OPTIONS: dict[str, bool] = {
    "description": True,
    "live-migration-capable": True,
    "map": False,
    "mdev": True,
}
BOOLEANS = ("live-migration-capable", "mdev")
# PVE::Mapping::Dir::options: description {optional => 1}, map {} (required); no booleans.
DIR_OPTIONS: dict[str, bool] = {"description": True, "map": False}
_KINDS: dict[str, tuple[dict[str, bool], tuple[str, ...]]] = {
    "pci": (OPTIONS, BOOLEANS),
    "dir": (DIR_OPTIONS, ()),
}


def section(world: World, kind: str = "pci") -> dict[str, dict[str, Any] | None]:
    """The mappings of kind by id (the state file keeps them sorted by id; Proxmox keeps
    creation order in `$cfg->{order}`: only the digest's value depends on it, never its
    use). None is a section parse_config skipped."""
    mappings: dict[str, dict[str, Any] | None] = world["mappings"].setdefault(kind, {})
    return mappings


def write(world: World, name: str, entry: dict[str, Any], kind: str = "pci") -> None:
    """Store entry as section name and write the file, then read it back as pmxcfs does.

    SectionConfig `write_config` dies "unknown section type ''" when the file holds a
    section parse_config skipped (its `$ids->{ID}` is undef, so it has no type): every
    write fails until that id is created anew. The id itself is written unchecked:
    pve-common's `pve-configid` check (JSONSchema.pm `pve_verify_configid`,
    `m/^$CONFIGID_RE$/`) lets a final newline through, and Mapping/PCI.pm
    `format_section_header` writes "ID\n", so "gpu\n" ends its section with an empty
    line. Read back (SectionConfig `parse_config` with Mapping/PCI.pm
    `parse_section_header`), the section "gpu" has no `map`, `check_config` refuses it
    ("missing value for required option 'map'"), and `$ids->{gpu}` is undef, also when
    a "gpu" existed before (the later section wins). The lines after the empty one are
    ignored, so the model drops them (only the digest's value differs).
    """
    mappings = section(world, kind)
    mappings[name] = entry
    check_writable(world, kind)
    if name.endswith("\n"):
        del mappings[name]
        mappings[name[:-1]] = None


def check_writable(world: World, kind: str = "pci") -> None:
    """SectionConfig `write_config`: a section without a type is "unknown section type ''"."""
    if any(entry is None for entry in section(world, kind).values()):
        raise fail("unknown section type ''")


def _line(key: str, value: Any, booleans: tuple[str, ...]) -> str:
    """SectionConfig `format_config_line` for one key."""
    if key in booleans:
        return f"\t{key} {1 if int(value) else 0}\n"
    if isinstance(value, list):
        return "".join(f"\t{key} {item}\n" for item in value)
    return f"\t{key} {value}\n" if str(value) != "" else ""


def config_text(world: World, kind: str = "pci") -> str:
    """The text `write_config` writes for the mappings (sections in id order)."""
    options, booleans = _KINDS[kind]
    out = ""
    for name, entry in sorted(section(world, kind).items()):
        data = f"{name}\n"
        if entry is None:  # the header, then the empty line that ended the section
            out += data + "\n"
            continue
        required = sorted(k for k, optional in options.items() if not optional)
        optional = sorted(k for k, opt in options.items() if opt)
        for key in [*required, *optional]:
            if entry.get(key) is not None:
                data += _line(key, entry[key], booleans)
        out += data + "\n"
    return out


def digest(world: World, kind: str = "pci") -> str:
    """`$cfg->{digest}`: SHA-1 of the whole file (`parse_config`)."""
    return hashlib.sha1(config_text(world, kind).encode("utf-8")).hexdigest()


def as_list(value: Any) -> list[str]:
    """An array parameter: repeated form fields arrive as a list, a single one as a string."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def _boolean(key: str, value: Any) -> int:
    """A top-level boolean as pve-common's JSONSchema accepts it (0 or 1)."""
    text = str(value)
    if text not in ("0", "1"):
        raise param_fail({key: f"type check ('boolean') failed - got '{text}'"})
    return int(text)


def check_config(params: dict[str, Any], create: bool, kind: str = "pci") -> dict[str, Any]:
    """`SectionConfig::check_config($id, $param, $create, 1)` for the type kind.

    Every given key must be an option (`check_value`: "unexpected property"), a scalar
    may not contain a line feed, booleans become numbers; with create every required
    option must be given ("missing value for required option 'map'").
    """
    options, booleans = _KINDS[kind]
    settings: dict[str, Any] = {}
    for key, value in params.items():
        if key not in options:
            raise fail(f"unexpected property '{key}'")
        if key == "map":
            settings[key] = as_list(value)
            continue
        if any(ch in str(value) for ch in "\r\n"):
            raise fail("property contains a line feed")
        settings[key] = _boolean(key, value) if key in booleans else str(value)
    if create:
        for key, optional in sorted(options.items()):
            if not optional and key not in params:
                raise fail(f"missing value for required option '{key}'")
    return settings


def delete_from_config(
    entry: dict[str, Any], new: dict[str, Any], keys: list[str], kind: str = "pci"
) -> None:
    """`SectionConfig::delete_from_config`: only optional options, never one being set."""
    options = _KINDS[kind][0]
    for key in keys:
        if key not in options:
            raise fail(f"no such option '{key}'")
        if not options[key]:
            raise fail(f"unable to delete required option '{key}'")
        if key in new:
            raise fail(f"cannot set and delete property '{key}' at the same time!")
        entry.pop(key, None)


def store(entry: dict[str, Any], settings: dict[str, Any], kind: str = "pci") -> None:
    """Set settings on entry as the file would hold them after a re-read."""
    for key, value in settings.items():
        if value == "" and key not in _KINDS[kind][1]:
            entry.pop(key, None)  # format_config_line writes no line for ''
        else:
            entry[key] = value


@contextlib.contextmanager
def locked(errmsg: str) -> Iterator[None]:
    """`PVE::Mapping::PCI::lock_pci_config($code, $errmsg)` (and Dir.pm `lock_dir_config`,
    the same code): a plain die inside the code
    comes back as HTTP 500 "ERRMSG: ERR" (the simulator's requests are already serialised,
    as cfs_lock_file serialises them on a node)."""
    try:
        yield
    except ApiFailure as failure:
        if failure.errors is not None:
            raise
        raise fail(f"{errmsg}: {failure.message}", failure.status) from None
