"""Read an inventory file safely: a regular file, bounded in size, UTF-8.

A FIFO, a device (`-i /dev/zero`) or a directory is refused from its type, before a
single byte is read: the file is opened non-blocking (a FIFO without a writer does not
hang the open) and checked with fstat on the open descriptor, so what is read is what
was checked.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provision.errors import InventoryError

MAX_INVENTORY_BYTES = 256 * 1024  # a large homelab inventory is a few KiB

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_inventory_text(file: Path, shown: str, what: str = "inventory") -> str:
    """The text of the inventory file (or another YAML input named by what);
    InventoryError (exit 2) for anything else."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(file, flags)
    except FileNotFoundError:
        raise InventoryError(
            "inventory file not found",
            file=shown,
            hint="pass -i PATH or set AIHOST_INVENTORY (examples are in inventories/)",
        ) from None
    except OSError as exc:
        raise InventoryError(f"cannot read {what}: {exc.strerror}", file=shown) from None
    try:
        data = _read_regular(fd, shown, what)
    finally:
        os.close(fd)
    return decode_inventory(data, shown, what)


def _read_regular(fd: int, shown: str, what: str) -> bytes:
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise InventoryError(
            f"the {what} is {kind}, not a regular file; nothing was read",
            file=shown,
            hint="name a regular YAML file",
        )
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_INVENTORY_BYTES:
        try:
            chunk = os.read(fd, MAX_INVENTORY_BYTES + 1 - size)
        except OSError as exc:
            raise InventoryError(f"cannot read {what}: {exc.strerror}", file=shown) from None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_INVENTORY_BYTES:
        raise InventoryError(
            f"the {what} is larger than {MAX_INVENTORY_BYTES // 1024} KiB",
            file=shown,
            hint="an inventory lists hosts, GPUs and VMs; split very large ones by cluster",
        )
    return b"".join(chunks)


def decode_inventory(data: bytes, shown: str, what: str = "inventory") -> str:
    """UTF-8 text (a leading BOM is dropped); InventoryError naming the line otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InventoryError(
            f"the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            file=shown,
            line=line,
            hint="save the file as UTF-8",
        ) from None
