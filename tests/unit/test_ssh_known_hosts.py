"""known_hosts parsing and host key judgement: names, ports, hashes, wildcards, markers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

import pytest

from provision.errors import EXIT_API, SSHError
from provision.ssh.known_hosts import (
    KnownHosts,
    check_host_key,
    fingerprint,
    lookup_name,
    names_match,
)


def blob(tag: bytes) -> bytes:
    """A fake key blob (the judgement only compares bytes)."""
    return b"\x00\x00\x00\x0bssh-ed25519" + hashlib.sha256(tag).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hashed(name: str) -> str:
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{b64(salt)}|{b64(digest)}"


def known_file(tmp_path: Path, *lines: str) -> KnownHosts:
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    return KnownHosts.load(path)


KEY_A, KEY_B = blob(b"a"), blob(b"b")


def test_fingerprint_is_unpadded_base64_sha256():
    fp = fingerprint(KEY_A)
    assert fp.startswith("SHA256:") and not fp.endswith("=")
    assert base64.b64decode(fp[7:] + "=") == hashlib.sha256(KEY_A).digest()


def test_port_22_is_stored_bare_other_ports_bracketed():
    assert lookup_name("pve.lan", 22) == "pve.lan"
    assert lookup_name("pve.lan", 2222) == "[pve.lan]:2222"


@pytest.mark.parametrize(
    ("field", "name", "expected"),
    [
        ("pve.lan,10.0.0.5", "10.0.0.5", True),
        ("PVE.lan", "pve.lan", True),
        ("pve.lan", "[pve.lan]:2222", False),
        ("*.lan", "pve.lan", True),
        ("*.lan,!evil.lan", "evil.lan", False),
        ("pve?.lan", "pve1.lan", True),
        ("pve?.lan", "pve12.lan", False),
        ("[pve.lan]:*", "[pve.lan]:2222", True),
        ("pve.lan", "pve.lan.evil", False),
    ],
)
def test_name_patterns(field: str, name: str, expected: bool):
    assert names_match(field, name) is expected


def test_hashed_names_match_only_their_host():
    field = hashed("[10.0.0.5]:2222")
    assert names_match(field, "[10.0.0.5]:2222")
    assert not names_match(field, "10.0.0.5")
    assert not names_match("|1|bm90IGJhc2U2NA|broken", "10.0.0.5")


def test_missing_file_is_empty_and_junk_lines_are_skipped(tmp_path: Path):
    assert KnownHosts.load(tmp_path / "absent").entries == []
    known = known_file(
        tmp_path,
        "# comment",
        "",
        "only-two fields",
        "pve.lan ssh-ed25519 !!!not-base64!!!",
        f"pve.lan ssh-ed25519 {b64(KEY_A)} comment here",
    )
    [key] = known.keys_for("pve.lan", 22)
    assert (key.key_type, key.blob, key.marker, key.line) == ("ssh-ed25519", KEY_A, None, 5)


def test_known_key_passes(tmp_path: Path):
    known = known_file(tmp_path, f"{hashed('pve.lan')} ssh-ed25519 {b64(KEY_A)}")
    check_host_key(known, "pve.lan", 22, "ssh-ed25519", KEY_A, "root@pve.lan:22")


def test_unknown_key_shows_fingerprint_and_how_to_accept(tmp_path: Path):
    known = known_file(tmp_path, f"other.lan ssh-ed25519 {b64(KEY_A)}")
    with pytest.raises(SSHError) as err:
        check_host_key(known, "pve.lan", 2222, "ssh-ed25519", KEY_B, "root@pve.lan:2222")
    assert err.value.exit_code == EXIT_API
    assert f"ssh-ed25519 {fingerprint(KEY_B)}" in err.value.message
    assert "root@pve.lan:2222" in err.value.message
    assert f"ssh-keyscan -t ssh-ed25519 -p 2222 pve.lan >> {known.path}" in str(err.value.hint)


def test_port_22_hint_has_no_port_flag(tmp_path: Path):
    known = known_file(tmp_path, "# empty")
    with pytest.raises(SSHError) as err:
        check_host_key(known, "pve.lan", 22, "ssh-ed25519", KEY_B, "root@pve.lan:22")
    assert f"ssh-keyscan -t ssh-ed25519 pve.lan >> {known.path}" in str(err.value.hint)


def test_key_for_another_port_does_not_count(tmp_path: Path):
    known = known_file(tmp_path, f"pve.lan ssh-ed25519 {b64(KEY_A)}")
    with pytest.raises(SSHError, match="is not known"):
        check_host_key(known, "pve.lan", 2222, "ssh-ed25519", KEY_A, "root@pve.lan:2222")


def test_changed_key_of_a_known_type_is_refused_loudly(tmp_path: Path):
    known = known_file(tmp_path, "# first", f"[pve.lan]:2222 ssh-ed25519 {b64(KEY_A)}")
    with pytest.raises(SSHError) as err:
        check_host_key(known, "pve.lan", 2222, "ssh-ed25519", KEY_B, "root@pve.lan:2222")
    text = err.value.message
    assert "host key for pve.lan has CHANGED" in text
    assert fingerprint(KEY_B) in text and fingerprint(KEY_A) in text
    assert f"{known.path} line 2" in text
    assert f"ssh-keygen -R '[pve.lan]:2222' -f {known.path}" in str(err.value.hint)


def test_key_of_another_type_is_unknown_not_changed(tmp_path: Path):
    known = known_file(tmp_path, f"pve.lan ecdsa-sha2-nistp256 {b64(KEY_A)}")
    with pytest.raises(SSHError) as err:
        check_host_key(known, "pve.lan", 22, "ssh-ed25519", KEY_B, "root@pve.lan:22")
    assert "CHANGED" not in err.value.message
    assert "has only ecdsa-sha2-nistp256" in err.value.message


def test_revoked_key_is_refused_even_when_also_listed(tmp_path: Path):
    known = known_file(
        tmp_path,
        f"pve.lan ssh-ed25519 {b64(KEY_A)}",
        f"@revoked * ssh-ed25519 {b64(KEY_A)}",
    )
    with pytest.raises(SSHError, match="@revoked"):
        check_host_key(known, "pve.lan", 22, "ssh-ed25519", KEY_A, "root@pve.lan:22")


def test_cert_authority_lines_do_not_vouch_for_a_key(tmp_path: Path):
    known = known_file(tmp_path, f"@cert-authority *.lan ssh-ed25519 {b64(KEY_A)}")
    with pytest.raises(SSHError, match="is not known"):
        check_host_key(known, "pve.lan", 22, "ssh-ed25519", KEY_A, "root@pve.lan:22")


def test_preferred_types_put_known_types_first(tmp_path: Path):
    known = known_file(
        tmp_path,
        f"pve.lan ssh-rsa {b64(KEY_A)}",
        f"pve.lan ecdsa-sha2-nistp256 {b64(KEY_B)}",
        f"@revoked pve.lan ssh-ed25519 {b64(KEY_B)}",
    )
    assert known.preferred_types("pve.lan", 22) == [
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
    ]
    assert known.preferred_types("other.lan", 22) == []
