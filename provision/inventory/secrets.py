"""Read secrets from where the inventory says they are; never from the inventory itself."""

from __future__ import annotations

import os

from provision.errors import InputError
from provision.inventory.model import SecretRef


def read_secret(ref: SecretRef, what: str) -> str:
    """Return the secret ref points at; `what` names it in errors (never its value)."""
    if ref.secret_env is not None:
        value = os.environ.get(ref.secret_env)
        if not value:
            raise InputError(
                f"environment variable {ref.secret_env} ({what}) is not set",
                hint=f"export {ref.secret_env}=... before running aihost",
            )
        return value.strip()
    assert ref.secret_file is not None
    path = ref.secret_file.expanduser()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read {what} from {path}: {exc.strerror}") from None
    if not value:
        raise InputError(f"{what} file {path} is empty")
    return value


def redact(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of each secret in text with '***'."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
