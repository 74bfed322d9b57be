"""OpenSSH known_hosts: read it (hashed names, [host]:port, wildcards, markers) and judge a
server's host key against it. Pure Python: no paramiko needed.

The rules follow OpenSSH: port 22 is looked up as "host", any other port as "[host]:port";
a key of a known type that differs is a CHANGED key (refused loudly); a key whose type is
not known for the host is unknown (refused with its fingerprint and how to accept it);
`@revoked` keys are refused; `@cert-authority` lines are ignored (no certificate support).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from provision.errors import SSHError

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
MARKERS = ("@cert-authority", "@revoked")


@dataclass(frozen=True)
class KnownKey:
    """One key from known_hosts: its type, raw blob, marker (or None) and line number."""

    key_type: str
    blob: bytes
    marker: str | None
    line: int

    @property
    def fingerprint(self) -> str:
        """The key's fingerprint as OpenSSH prints it ("SHA256:...")."""
        return fingerprint(self.blob)


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob: unpadded base64 of its digest."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    return "SHA256:" + digest.rstrip("=")


def lookup_name(host: str, port: int) -> str:
    """The name OpenSSH stores a host under: "host" on port 22, else "[host]:port"."""
    return host if port == 22 else f"[{host}]:{port}"


def _hashed_match(entry: str, name: str) -> bool:
    """Whether a hashed name "|1|salt|hash" is HMAC-SHA1(salt, name)."""
    parts = entry.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt = base64.b64decode(parts[2], validate=True)
        expected = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return False
    actual = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(actual, expected)


def _pattern_match(pattern: str, name: str) -> bool:
    """OpenSSH host patterns: '*' and '?' wildcards, case-insensitive."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, name, flags=re.IGNORECASE) is not None


def names_match(field: str, name: str) -> bool:
    """Whether a known_hosts name field (comma list or one hashed name) matches name."""
    if field.startswith("|"):
        return _hashed_match(field, name)
    matched = False
    for pattern in field.split(","):
        if pattern.startswith("!"):
            if _pattern_match(pattern[1:], name):
                return False
        elif _pattern_match(pattern, name):
            matched = True
    return matched


@dataclass
class KnownHosts:
    """The parsed entries of one known_hosts file (empty when the file does not exist)."""

    path: Path
    entries: list[tuple[str, KnownKey]]

    @classmethod
    def load(cls, path: Path) -> KnownHosts:
        """Read path, skipping comments and lines that are not valid host key entries."""
        entries: list[tuple[str, KnownKey]] = []
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return cls(path, entries)
        except OSError as exc:
            raise SSHError(f"cannot read known_hosts file {path}: {exc.strerror}") from None
        for number, raw in enumerate(text.splitlines(), 1):
            fields = raw.split()
            if not fields or fields[0].startswith("#"):
                continue
            marker = fields.pop(0) if fields[0] in MARKERS else None
            if len(fields) < 3:
                continue
            try:
                blob = base64.b64decode(fields[2], validate=True)
            except (binascii.Error, ValueError):
                continue
            entries.append((fields[0], KnownKey(fields[1], blob, marker, number)))
        return cls(path, entries)

    def keys_for(self, host: str, port: int) -> list[KnownKey]:
        """Every key (any marker) recorded for host:port."""
        name = lookup_name(host, port)
        return [key for field, key in self.entries if names_match(field, name)]

    def preferred_types(self, host: str, port: int) -> list[str]:
        """Host key algorithms to ask the server for first: the types already known."""
        types: list[str] = []
        for key in self.keys_for(host, port):
            if key.marker is not None:
                continue
            algs = ["rsa-sha2-512", "rsa-sha2-256"] if key.key_type == "ssh-rsa" else []
            for alg in [*algs, key.key_type]:
                if alg not in types:
                    types.append(alg)
        return types


def accept_hint(host: str, port: int, key_type: str, path: Path) -> str:
    """How to accept a host key once its fingerprint is checked on the node itself."""
    port_flag = "" if port == 22 else f"-p {port} "
    short = key_type.removeprefix("ssh-").split("-")[0]
    return (
        f"check it on the node (ssh-keygen -lf /etc/ssh/ssh_host_{short}_key.pub) and, if it "
        f"matches, accept it: ssh-keyscan -t {key_type} {port_flag}{host} >> {path}"
    )


def check_host_key(
    known: KnownHosts, host: str, port: int, key_type: str, blob: bytes, where: str
) -> None:
    """Accept the server's key only if known_hosts holds it; raise SSHError otherwise."""
    keys = known.keys_for(host, port)
    offered = f"{key_type} {fingerprint(blob)}"
    if any(k.marker == "@revoked" and k.blob == blob for k in keys):
        raise SSHError(
            f"the host key of {where} ({offered}) is marked @revoked in {known.path}; refusing"
        )
    plain = [k for k in keys if k.marker is None]
    if any(k.blob == blob for k in plain):
        return
    same_type = [k for k in plain if k.key_type == key_type]
    if same_type:
        old = same_type[0]
        raise SSHError(
            f"WARNING: host key for {host} has CHANGED: {where} now offers {offered}, but "
            f"{known.path} line {old.line} has {old.fingerprint}. Someone may be intercepting "
            "the connection, or the node was reinstalled; refusing to connect",
            hint=(
                f"if you know why it changed, remove the old key with ssh-keygen -R "
                f"'{lookup_name(host, port)}' -f {known.path}, then "
                + accept_hint(host, port, key_type, known.path)
            ),
        )
    other = sorted({k.key_type for k in plain})
    also = f" ({known.path} has only {', '.join(other)} for it)" if other else ""
    raise SSHError(
        f"the SSH host key of {where} is not known: {offered} is not in {known.path}{also}; "
        "refusing to connect",
        hint=accept_hint(host, port, key_type, known.path),
    )
