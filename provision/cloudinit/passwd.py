"""SHA-512 crypt (`$6$`) for the user-data `passwd:` key, so no plain password is stored.

cloud-init hands `passwd:` to `usermod -p` as a crypt hash; glibc's crypt(3) reads `$6$`
(Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512", the algorithm implemented here
step by step, since Python's own crypt module is deprecated and gone in 3.13).

The salt is derived from the VM, the user and the password, not random: the rendered
user-data must be the same on every run, or every `vm up` would see a changed user-data.
It still differs per VM and per user, so equal passwords do not give equal hashes.
"""

from __future__ import annotations

import hashlib

MASKED = "***"  # what a masked render (provision/cloudinit/render.py MASK) reads instead
ROUNDS = 5000  # the algorithm's default: no rounds= field in the hash
_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ORDER = (
    (0, 21, 42),
    (22, 43, 1),
    (44, 2, 23),
    (3, 24, 45),
    (25, 46, 4),
    (47, 5, 26),
    (6, 27, 48),
    (28, 49, 7),
    (50, 8, 29),
    (9, 30, 51),
    (31, 52, 10),
    (53, 11, 32),
    (12, 33, 54),
    (34, 55, 13),
    (56, 14, 35),
    (15, 36, 57),
    (37, 58, 16),
    (59, 17, 38),
    (18, 39, 60),
    (40, 61, 19),
    (62, 20, 41),
)


def _repeat(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def sha512_crypt(password: str, salt: str) -> str:
    """The `$6$salt$hash` of password (salt: up to 16 characters of [./0-9A-Za-z])."""
    key, slt = password.encode("utf-8"), salt.encode("ascii")[:16]
    b = hashlib.sha512(key + slt + key).digest()
    ctx = hashlib.sha512(key + slt + _repeat(b, len(key)))
    length = len(key)
    while length:
        ctx.update(b if length & 1 else key)
        length >>= 1
    a = ctx.digest()
    p = _repeat(hashlib.sha512(key * len(key)).digest(), len(key))
    s = _repeat(hashlib.sha512(slt * (16 + a[0])).digest(), len(slt))
    c = a
    for i in range(ROUNDS):
        round_ = hashlib.sha512(p if i % 2 else c)
        if i % 3:
            round_.update(s)
        if i % 7:
            round_.update(p)
        round_.update(c if i % 2 else p)
        c = round_.digest()
    out = "".join(_b64(c[x] << 16 | c[y] << 8 | c[z], 4) for x, y, z in _ORDER)
    return f"$6${slt.decode()}${out}{_b64(c[63], 2)}"


def _b64(value: int, count: int) -> str:
    chars = []
    for _ in range(count):
        chars.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(chars)


def derived_salt(vm_name: str, user: str, password: str) -> str:
    """A 16-character crypt salt, stable for (vm, user, password), different across them."""
    digest = hashlib.sha256(f"aihost-passwd\0{vm_name}\0{user}\0{password}".encode()).digest()
    return "".join(_ITOA64[byte & 0x3F] for byte in digest[:16])


def hash_password(vm_name: str, user: str, password: str) -> str:
    """The `passwd:` value for a user-data: SHA-512 crypt with a derived salt."""
    return sha512_crypt(password, derived_salt(vm_name, user, password))
