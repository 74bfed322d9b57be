"""SFTP file helpers against a local stand-in for paramiko's SFTPClient: the rename
fallback for servers without posix-rename, and directory creation rules."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import paramiko
import pytest

from provision.errors import SSHError
from provision.ssh import files


class LocalSftp:
    """The SFTPClient calls files.py makes, on the local filesystem, like OpenSSH's
    sftp-server without the posix-rename extension (plain rename refuses to overwrite)."""

    def __init__(self, fail_rename_from: str | None = None) -> None:
        self.fail_rename_from = fail_rename_from
        self.calls: list[str] = []

    def stat(self, path: str) -> paramiko.SFTPAttributes:
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(path))
        except FileNotFoundError:
            raise OSError(errno.ENOENT, "No such file") from None

    def posix_rename(self, old: str, new: str) -> None:
        self.calls.append("posix_rename")
        raise OSError("Operation unsupported")

    def rename(self, old: str, new: str) -> None:
        self.calls.append(f"rename {Path(old).name} {Path(new).name}")
        if old == self.fail_rename_from:
            raise OSError("Failure")
        if os.path.exists(new):
            raise OSError("Failure")
        os.rename(old, new)

    def remove(self, path: str) -> None:
        self.calls.append(f"remove {Path(path).name}")
        os.remove(path)

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(path, mode)


def test_without_posix_rename_the_old_file_is_moved_aside_then_removed(tmp_path: Path):
    target, temp = tmp_path / "user.yaml", tmp_path / "user.yaml.aihost-tmp-1"
    target.write_bytes(b"old")
    temp.write_bytes(b"new")
    sftp = LocalSftp()
    files._replace(sftp, str(temp), str(target))  # type: ignore[arg-type]
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user.yaml"]
    assert sftp.calls[0] == "posix_rename"


def test_without_posix_rename_a_new_file_is_renamed_into_place(tmp_path: Path):
    target, temp = tmp_path / "user.yaml", tmp_path / "user.yaml.aihost-tmp-1"
    temp.write_bytes(b"new")
    files._replace(LocalSftp(), str(temp), str(target))  # type: ignore[arg-type]
    assert target.read_bytes() == b"new" and not temp.exists()


def test_failed_fallback_rename_puts_the_old_file_back(tmp_path: Path):
    target, temp = tmp_path / "user.yaml", tmp_path / "user.yaml.aihost-tmp-1"
    target.write_bytes(b"old")
    temp.write_bytes(b"new")
    with pytest.raises(OSError):
        files._replace(LocalSftp(fail_rename_from=str(temp)), str(temp), str(target))  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if ".aihost-old-" in p.name]


def test_posix_rename_errors_with_an_errno_are_not_retried(tmp_path: Path):
    class Denied(LocalSftp):
        def posix_rename(self, old: str, new: str) -> None:
            raise OSError(errno.EACCES, "Permission denied")

    sftp = Denied()
    with pytest.raises(PermissionError):
        files._replace(sftp, str(tmp_path / "a"), str(tmp_path / "b"))  # type: ignore[arg-type]
    assert sftp.calls == []


def test_directory_is_created_only_below_an_existing_parent(tmp_path: Path):
    sftp = LocalSftp()
    files.ensure_directory(sftp, str(tmp_path / "snippets"), "root@pve:22")  # type: ignore[arg-type]
    assert (tmp_path / "snippets").is_dir()
    with pytest.raises(SSHError, match="neither it nor"):
        files.ensure_directory(sftp, str(tmp_path / "a" / "b"), "root@pve:22")  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(SSHError, match="not a directory"):
        files.ensure_directory(sftp, str(tmp_path / "file"), "root@pve:22")  # type: ignore[arg-type]


def test_relative_remote_paths_are_refused():
    with pytest.raises(ValueError, match="absolute"):
        files.upload_if_changed(LocalSftp(), "snippets/a.yaml", b"x", "root@pve:22")  # type: ignore[arg-type]
