"""Read secrets from where the inventory says they are; never from the inventory itself."""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

from provision.errors import InputError
from provision.inventory.model import Inventory, SecretRef


def read_secret(ref: SecretRef, what: str) -> str:
    """Return the secret ref points at; `what` names it in errors (never its value)."""
    if ref.secret_env is not None:
        value = os.environ.get(ref.secret_env)
        if not value:
            raise InputError(
                f"environment variable {ref.secret_env} ({what}) is not set",
                hint=f"export {ref.secret_env}=... before running aihost",
            )
        return _one_line(value.strip(), f"environment variable {ref.secret_env} ({what})")
    assert ref.secret_file is not None
    path = ref.secret_file.expanduser()
    try:
        value = _read_small(path).strip()
    except OSError as exc:
        raise InputError(f"cannot read {what} from {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} file {path} is not UTF-8 text") from None
    if not value:
        raise InputError(f"{what} file {path} is empty")
    return _one_line(value, f"{what} in {path}")


def check_vm_secrets(inv: Inventory, names: list[str]) -> None:
    """Read every secret `vm up` will need for these VMs, so a missing or malformed one is
    exit 2 before the first request (the values are read again where they are used)."""
    for name in names:
        vm = inv.vm(name)
        if vm.hf_token is not None and vm.runtime == "vllm":
            read_secret(vm.hf_token, f"vms.{name}.hf_token, the Hugging Face token")
        if vm.user.password is not None:
            read_secret(vm.user.password, f"vms.{name}.user.password")


def secret_available(ref: SecretRef) -> bool:
    """Is the secret there to read (the variable set, the file present)?"""
    if ref.secret_env is not None:
        return bool(os.environ.get(ref.secret_env))
    return ref.secret_file is not None and ref.secret_file.expanduser().exists()


def _one_line(value: str, where: str) -> str:
    """A secret is one line: a line break would split the HTTP header or file it goes to."""
    for char in value:
        if unicodedata.category(char) == "Cc" or char in "\u0085\u2028\u2029":
            raise InputError(
                f"{where} contains a control character or line break (the value is not shown)",
                hint="a token or password is one line; check how the variable or file was written",
            )
    return value


def redact(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of each secret in text with '***'."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


MAX_SECRET_BYTES = 64 * 1024


def _read_small(path: Path) -> str:
    """A secret file's text: a regular file, at most MAX_SECRET_BYTES (no FIFO, no device)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise OSError(0, f"larger than {MAX_SECRET_BYTES // 1024} KiB")
    return data.decode("utf-8")
