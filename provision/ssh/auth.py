"""Public-key authentication on an open paramiko Transport: the configured key file, then
the ssh-agent's keys, then (only without a configured key) ~/.ssh/id_*. Never a password
or passphrase prompt: an encrypted key must come through the agent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from provision.errors import InputError, SSHError
from provision.ssh.lib import load_paramiko

if TYPE_CHECKING:
    import paramiko

    from provision.ssh.transport import SshTarget

DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")
MAX_KEYS = 6  # OpenSSH's MaxAuthTries default: offering more gets us disconnected


def _load_key(path: Path, encrypted: list[Path]) -> paramiko.PKey | None:
    """The private key at path, or None when it needs a passphrase (noted in encrypted)."""
    paramiko = load_paramiko()
    try:
        return paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError):
        # cryptography raises TypeError for a passphrase-protected key loaded without one
        encrypted.append(path)
        return None
    except FileNotFoundError:
        raise InputError(
            f"SSH key {path} does not exist", hint="fix ssh.key in the inventory"
        ) from None
    except (paramiko.SSHException, OSError, ValueError) as exc:
        raise InputError(f"cannot read SSH key {path}: {exc}") from None


def _agent_keys() -> tuple[paramiko.Agent | None, list[paramiko.PKey]]:
    """The ssh-agent (if SSH_AUTH_SOCK points at one) and its keys."""
    if not os.environ.get("SSH_AUTH_SOCK"):
        return None, []
    paramiko = load_paramiko()
    try:
        agent = paramiko.Agent()
        return agent, list(agent.get_keys())
    except (paramiko.SSHException, OSError):
        return None, []


def _candidates(
    target: SshTarget, agent_keys: list[paramiko.PKey], encrypted: list[Path]
) -> Iterator[tuple[str, paramiko.PKey]]:
    """(description, key) pairs to offer, in order, without duplicates."""
    seen: set[bytes] = set()

    def fresh(key: paramiko.PKey) -> bool:
        blob = key.asbytes()
        if blob in seen:
            return False
        seen.add(blob)
        return True

    if target.key_path is not None:
        key = _load_key(target.key_path, encrypted)
        if key is not None and fresh(key):
            yield f"key {target.key_path}", key
    for agent_key in agent_keys:
        if fresh(agent_key):
            yield f"agent key {agent_key.get_name()} {agent_key.fingerprint}", agent_key
    if target.key_path is None:
        for name in DEFAULT_IDENTITIES:
            path = Path.home() / ".ssh" / name
            if path.is_file():
                key = _load_key(path, encrypted)
                if key is not None and fresh(key):
                    yield f"key {path}", key


def authenticate(transport: paramiko.Transport, target: SshTarget) -> None:
    """Log in as target.user with the first key the server accepts; SSHError if none."""
    paramiko = load_paramiko()
    agent, agent_keys = _agent_keys()
    encrypted: list[Path] = []
    tried: list[str] = []
    try:
        for description, key in _candidates(target, agent_keys, encrypted):
            if len(tried) >= MAX_KEYS:
                break
            tried.append(description)
            try:
                remaining = transport.auth_publickey(target.user, key)
            except paramiko.BadAuthenticationType as exc:
                raise SSHError(
                    f"{target.where} does not accept public-key login "
                    f"(it allows: {', '.join(exc.allowed_types) or 'nothing'})"
                ) from None
            except paramiko.AuthenticationException:
                continue
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise SSHError(f"SSH login to {target.where} failed: {exc}") from None
            if not remaining and transport.is_authenticated():
                return
            raise SSHError(
                f"{target.where} wants more than a key to log in ({', '.join(remaining)}); "
                "aihost logs in with a key only"
            )
    finally:
        if agent is not None:
            agent.close()
    raise SSHError(_failure_message(target, tried), hint=_failure_hint(target, encrypted))


def _failure_message(target: SshTarget, tried: list[str]) -> str:
    if not tried:
        return (
            f"no SSH key to log in to {target.where}: ssh.key is not set, no ssh-agent key, "
            "no ~/.ssh/id_ed25519, id_ecdsa or id_rsa"
        )
    return f"authentication failed for {target.where}: the server refused {', '.join(tried)}"


def _failure_hint(target: SshTarget, encrypted: list[Path]) -> str:
    if encrypted:
        names = " ".join(str(p) for p in encrypted)
        return (
            f"{names} needs a passphrase and aihost never asks for one: load it into "
            f"ssh-agent first (ssh-add {names})"
        )
    return (
        f"add the public key to ~{target.user}/.ssh/authorized_keys on the node, "
        "or set ssh.key (and ssh.user) in the inventory"
    )
