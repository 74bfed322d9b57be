"""SHA-512 crypt: the same hashes as glibc/OpenSSL (`openssl passwd -6`), a stable salt."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from provision.cloudinit.passwd import derived_salt, hash_password, sha512_crypt

# computed with `openssl passwd -6 -salt SALT PASSWORD` (OpenSSL 3), kept as data so the
# test also runs where openssl is missing
KNOWN = [
    ("x", "saltsalt"),
    ("pa: ss#word", "abcdefghijklmnop"),
    ("\u00fcn\u00efc\u00f6d\u00e9 \u2603", "a"),
    ("a" * 100, "./09AZaz"),
]


@pytest.mark.parametrize(("password", "salt"), KNOWN)
def test_matches_openssl(password, salt):
    tool = shutil.which("openssl")
    if tool is None:
        pytest.skip("openssl is not installed")
    expected = subprocess.run(
        [tool, "passwd", "-6", "-salt", salt, password], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert sha512_crypt(password, salt) == expected


def test_a_published_vector():
    """Drepper's SHA-crypt test vector (salt 'saltstring', key 'Hello world!')."""
    assert sha512_crypt("Hello world!", "saltstring") == (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJu"
        "esI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
    )


def test_salt_is_stable_and_differs_per_vm_and_user():
    assert hash_password("box", "alice", "pw") == hash_password("box", "alice", "pw")
    assert derived_salt("box", "alice", "pw") != derived_salt("box2", "alice", "pw")
    assert derived_salt("box", "alice", "pw") != derived_salt("box", "bob", "pw")
    assert len(derived_salt("box", "alice", "pw")) == 16
    assert "pw" not in hash_password("box", "alice", "pw").split("$")[3]
