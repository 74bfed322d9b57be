"""The simulator's world on disk, shared by every process serving the same state dir.

Each request runs inside `StateStore.transaction()`: an exclusive fcntl.flock on
state_dir/lock, the world loaded from state.json, changed in memory, and written back
atomically (temp file + os.replace) only when it changed. Secrets generated once per
state dir (token secrets, root password, ticket key) live in secrets.json (mode 0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

World = dict[str, Any]


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file so readers see either the old or the new content, never a mix.

    Owner-only by default: the world holds what guests were given (user-data with
    passwords and tokens, ISO images), so nothing here is for other local users.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def private_dir(path: Path) -> None:
    """Create path as a 0700 directory, or tighten an existing one of ours to 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)


class StateStore:
    """Loads and saves the world under an exclusive lock on state_dir/lock."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)
        private_dir(self.dir)
        self.path = self.dir / "state.json"
        self.lock_path = self.dir / "lock"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the state dir's exclusive lock (other processes and threads wait)."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def exists(self) -> bool:
        """True once a world has been written."""
        return self.path.is_file()

    def load(self) -> World:
        """The world as last written (call with the lock held)."""
        loaded: World = json.loads(self.path.read_text(encoding="utf-8"))
        return loaded

    def save(self, world: World) -> None:
        """Write the world atomically (call with the lock held)."""
        write_atomic(self.path, json.dumps(world, sort_keys=True).encode("utf-8"))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[World]:
        """Lock, load, yield the world for changes, write it back if it changed, unlock."""
        with self.locked():
            before = self.path.read_text(encoding="utf-8")
            world: World = json.loads(before)
            yield world
            after = json.dumps(world, sort_keys=True)
            if after != before:
                write_atomic(self.path, after.encode("utf-8"))

    def secrets(self, token_ids: list[str]) -> dict[str, str]:
        """Secrets of this state dir: one uuid per token id, "root@pam" password, ticket key.

        Generated on first use and kept in secrets.json (mode 0600); never logged.
        """
        path = self.dir / "secrets.json"
        with self.locked():
            known: dict[str, str] = (
                json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            )
            changed = False
            for token in token_ids:
                if token not in known:
                    known[token] = str(uuid.uuid4())
                    changed = True
            for key in ("root@pam", "ticket-key"):
                if key not in known:
                    known[key] = secrets.token_urlsafe(18)
                    changed = True
            if changed:
                write_atomic(path, json.dumps(known, indent=1).encode("utf-8"), mode=0o600)
            return known
