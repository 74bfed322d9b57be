"""File operations over SFTP: read, remove, and an atomic upload skipped when the content
is already there (compared by SHA-256 of what the server returns, no remote shell).

These raise OSError/EOFError/paramiko.SSHException as paramiko does; SshSession turns them
into SSHError naming the node. Contents are never logged (user-data holds secrets).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import posixpath
import secrets
import stat
from contextlib import suppress
from typing import TYPE_CHECKING

from provision.errors import SSHError
from provision.ssh.lib import load_paramiko

if TYPE_CHECKING:
    import paramiko

log = logging.getLogger(__name__)
TEMP_MARK = ".aihost-tmp-"
OLD_MARK = ".aihost-old-"
CHUNK = 32768


def _stat(sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPAttributes | None:
    """The attributes of path, or None when it does not exist."""
    try:
        return sftp.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def read_file(sftp: paramiko.SFTPClient, path: str) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        handle = sftp.open(path, "rb")
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    with handle:
        handle.prefetch()
        return handle.read()


def remove(sftp: paramiko.SFTPClient, path: str) -> bool:
    """Remove the file; False when it did not exist."""
    try:
        sftp.remove(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    return True


def _open_private(sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPFile:
    """Create path exclusively with mode 0600 from the start (never briefly world-readable).

    paramiko's open() sends no permissions, so the server would apply its umask to 0666;
    the OPEN request is built the same way here, with the permissions attribute set.
    """
    paramiko = load_paramiko()
    from paramiko.sftp import (
        CMD_HANDLE,
        CMD_OPEN,
        SFTP_FLAG_CREATE,
        SFTP_FLAG_EXCL,
        SFTP_FLAG_WRITE,
    )

    attrs = paramiko.SFTPAttributes()
    attrs.st_mode = 0o600
    flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_EXCL
    kind, msg = sftp._request(CMD_OPEN, path, flags, attrs)  # type: ignore[attr-defined]
    if kind != CMD_HANDLE or msg is None:
        raise paramiko.SFTPError(f"expected a file handle opening {path}")
    return paramiko.SFTPFile(sftp, msg.get_binary(), "wb", -1)


def ensure_directory(sftp: paramiko.SFTPClient, directory: str, where: str) -> None:
    """Create directory if missing, but only when its parent exists (no mkdir -p)."""
    found = _stat(sftp, directory)
    if found is not None:
        if not stat.S_ISDIR(found.st_mode or 0):
            raise SSHError(f"{directory} on {where} exists but is not a directory")
        return
    parent = posixpath.dirname(directory.rstrip("/")) or "/"
    if _stat(sftp, parent) is None:
        raise SSHError(
            f"cannot upload into {directory} on {where}: neither it nor {parent} exists",
            hint="check the storage's path (pvesm path / storage.cfg) and that it allows "
            "content 'snippets'",
        )
    log.debug("creating %s on %s", directory, where)
    sftp.mkdir(directory, 0o755)


def _replace(sftp: paramiko.SFTPClient, temp: str, path: str) -> None:
    """Move temp over path atomically (posix-rename@openssh.com); without that extension,
    move the old file aside first and restore it if the second rename fails."""
    try:
        sftp.posix_rename(temp, path)
        return
    except OSError as exc:
        if exc.errno is not None:
            raise
        log.debug("posix-rename refused (%s); falling back to plain renames", exc)
    old = None
    if _stat(sftp, path) is not None:
        old = path + OLD_MARK + secrets.token_hex(6)
        sftp.rename(path, old)
    try:
        sftp.rename(temp, path)
    except BaseException:
        if old is not None:
            sftp.rename(old, path)
        raise
    if old is not None:
        with suppress(OSError):
            sftp.remove(old)


def same_content(sftp: paramiko.SFTPClient, path: str, content: bytes) -> bool:
    """Whether path holds exactly content (size first, then SHA-256 of the bytes read)."""
    found = _stat(sftp, path)
    if found is None:
        return False
    if stat.S_ISDIR(found.st_mode or 0):
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    if found.st_size is not None and found.st_size != len(content):
        return False
    current = read_file(sftp, path)
    if current is None:
        return False
    return hashlib.sha256(current).digest() == hashlib.sha256(content).digest()


def upload_if_changed(sftp: paramiko.SFTPClient, path: str, content: bytes, where: str) -> bool:
    """Write content to path atomically unless it is already there; True when written."""
    if not path.startswith("/"):
        raise ValueError(f"remote path must be absolute: {path!r}")
    if same_content(sftp, path, content):
        log.debug("%s on %s is up to date", path, where)
        return False
    ensure_directory(sftp, posixpath.dirname(path) or "/", where)
    temp = path + TEMP_MARK + secrets.token_hex(6)
    moved = False
    try:
        handle = _open_private(sftp, temp)
        with handle:
            handle.set_pipelined(True)
            for start in range(0, len(content), CHUNK):
                handle.write(content[start : start + CHUNK])
        written = sftp.stat(temp).st_size
        if written != len(content):
            raise SSHError(f"short write to {temp} on {where}: {written} of {len(content)} bytes")
        _replace(sftp, temp, path)
        moved = True
    finally:
        if not moved:
            with suppress(OSError, EOFError, load_paramiko().SSHException):
                sftp.remove(temp)
    log.debug("wrote %s on %s (%d bytes)", path, where, len(content))
    return True
