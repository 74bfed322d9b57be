"""SFTP operations of the simulator's SSH endpoint, confined to mapped node paths.

A node path such as /var/lib/vz/snippets/x.yaml is mapped through the longest matching
prefix onto a local directory; paths outside every prefix (also via `..` or a symlink)
get SFTP permission denied. Directories above a prefix (/var, /var/lib) can be stat-ed and
listed, as they exist on a real node, but not changed. `rename` refuses an existing
target (as OpenSSH's sftp-server does); `posix-rename@openssh.com` replaces it atomically.
"""

from __future__ import annotations

import os
import posixpath
import stat as statmod
from pathlib import Path
from typing import Any

import paramiko
from paramiko.sftp import SFTP_FAILURE, SFTP_OK, SFTP_OP_UNSUPPORTED, SFTP_PERMISSION_DENIED

HOME = "/root"


def node_path(path: str | bytes) -> str:
    """An absolute, normalised node path (relative paths start at root's home)."""
    text = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
    norm = posixpath.normpath(posixpath.join(HOME, text))
    return "/" + norm.lstrip("/")


def _errno(exc: OSError) -> int:
    return int(paramiko.SFTPServer.convert_errno(exc.errno or 0))


class _Handle(paramiko.SFTPHandle):
    """An open file; paramiko reads and writes through readfile/writefile."""

    filename: str
    readfile: Any
    writefile: Any

    def stat(self) -> Any:
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return _errno(exc)

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        try:
            paramiko.SFTPServer.set_file_attr(self.filename, attr)
        except OSError as exc:
            return _errno(exc)
        return SFTP_OK


class MappedSftp(paramiko.SFTPServerInterface):
    """paramiko SFTP server interface over the endpoint's path map."""

    def __init__(self, server: Any, *args: Any, path_map: dict[str, Path], **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self.path_map = path_map

    @staticmethod
    def map_path(path_map: dict[str, Path], path: str | bytes) -> Path | None:
        """The local path of a node path, or None when it is outside every mapped prefix."""
        norm = node_path(path)
        for prefix in sorted(path_map, key=len, reverse=True):
            if norm == prefix or norm.startswith(prefix.rstrip("/") + "/"):
                root = Path(path_map[prefix])
                local = root / norm[len(prefix) :].lstrip("/")
                real_root = os.path.realpath(root)
                real = os.path.realpath(local)
                if real == real_root or real.startswith(real_root + os.sep):
                    return local
                return None
        return None

    def _local(self, path: str | bytes) -> Path | None:
        return self.map_path(self.path_map, path)

    def _above(self, path: str | bytes) -> list[str] | None:
        """Names directly below path leading to mapped prefixes, if path is above one."""
        norm = node_path(path).rstrip("/")
        children = sorted(
            {p[len(norm) + 1 :].split("/")[0] for p in self.path_map if p.startswith(norm + "/")}
        )
        return children or None

    @staticmethod
    def _dir_attr(name: str = "") -> paramiko.SFTPAttributes:
        attr = paramiko.SFTPAttributes()
        attr.st_mode = statmod.S_IFDIR | 0o755
        attr.st_uid = attr.st_gid = 0
        attr.st_size = 4096
        attr.filename = name
        return attr

    def canonicalize(self, path: str) -> str:
        """The absolute normalised form of path."""
        return node_path(path)

    def list_folder(self, path: str) -> Any:
        """Entries of a mapped directory (or the way down to the mapped ones)."""
        local = self._local(path)
        if local is None:
            above = self._above(path)
            if above is None:
                return SFTP_PERMISSION_DENIED
            return [self._dir_attr(name) for name in above]
        try:
            entries = []
            for name in sorted(os.listdir(local)):
                attr = paramiko.SFTPAttributes.from_stat(os.lstat(local / name))
                attr.filename = name
                entries.append(attr)
            return entries
        except OSError as exc:
            return _errno(exc)

    def _stat(self, path: str, follow: bool) -> Any:
        local = self._local(path)
        if local is None:
            return self._dir_attr() if self._above(path) is not None else SFTP_PERMISSION_DENIED
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(local) if follow else os.lstat(local))
        except OSError as exc:
            return _errno(exc)

    def stat(self, path: str) -> Any:
        """stat(2) of a mapped path."""
        return self._stat(path, follow=True)

    def lstat(self, path: str) -> Any:
        """lstat(2) of a mapped path."""
        return self._stat(path, follow=False)

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> Any:
        """Open a mapped file for reading and/or writing."""
        local = self._local(path)
        if local is None:
            return SFTP_PERMISSION_DENIED
        mode = getattr(attr, "st_mode", None) or 0o644
        try:
            fd = os.open(local, flags, mode & 0o7777)
        except OSError as exc:
            return _errno(exc)
        if flags & os.O_WRONLY:
            fmode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            fmode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            fmode = "rb"
        handle = _Handle(flags)
        handle.filename = str(local)
        handle.readfile = handle.writefile = os.fdopen(fd, fmode)
        return handle

    def _two(self, old: str, new: str) -> tuple[Path, Path] | int:
        src, dst = self._local(old), self._local(new)
        if src is None or dst is None:
            return SFTP_PERMISSION_DENIED
        return src, dst

    def rename(self, oldpath: str, newpath: str) -> int:
        """Rename, refusing to replace an existing target (SFTP v3 semantics)."""
        pair = self._two(oldpath, newpath)
        if isinstance(pair, int):
            return pair
        if os.path.lexists(pair[1]):
            return SFTP_FAILURE
        return self._call(os.rename, *pair)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        """posix-rename@openssh.com: atomically replace the target."""
        pair = self._two(oldpath, newpath)
        return pair if isinstance(pair, int) else self._call(os.replace, *pair)

    def remove(self, path: str) -> int:
        """Remove a mapped file."""
        local = self._local(path)
        return SFTP_PERMISSION_DENIED if local is None else self._call(os.remove, local)

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        """Create a directory inside a mapped prefix."""
        local = self._local(path)
        if local is None:
            return SFTP_FAILURE if self._above(path) is not None else SFTP_PERMISSION_DENIED
        mode = (getattr(attr, "st_mode", None) or 0o755) & 0o7777
        return self._call(os.mkdir, local, mode)

    def rmdir(self, path: str) -> int:
        """Remove an empty directory inside a mapped prefix (not the prefix itself)."""
        local = self._local(path)
        if local is None or node_path(path) in self.path_map:
            return SFTP_PERMISSION_DENIED
        return self._call(os.rmdir, local)

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        """chmod/chown/utime of a mapped path."""
        local = self._local(path)
        if local is None:
            return SFTP_PERMISSION_DENIED
        return self._call(paramiko.SFTPServer.set_file_attr, str(local), attr)

    def symlink(self, target_path: str, path: str) -> int:
        """Not offered: links could point out of the mapped directories."""
        return SFTP_OP_UNSUPPORTED

    def readlink(self, path: str) -> Any:
        """Not offered (no symlinks are created here)."""
        return SFTP_OP_UNSUPPORTED

    @staticmethod
    def _call(func: Any, *args: Any) -> int:
        try:
            func(*args)
        except OSError as exc:
            return _errno(exc)
        return SFTP_OK
