"""Cloud-init delivery pieces: the cidata ISO (read back by genisoimage's isoinfo),
and the provisioning generation."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from provision.delivery.generation import generation_of, instance_id, meta_data, with_generation
from provision.delivery.iso import build_cidata_iso, content_digest

USER_DATA = b"#cloud-config\npackages: [qemu-guest-agent]\n"


def _isoinfo() -> str:
    found = shutil.which("isoinfo")
    if not found:
        if os.environ.get("AIHOST_REQUIRE_TOOLS") == "1":
            pytest.fail("isoinfo (genisoimage) is required")
        pytest.skip("isoinfo from Debian's genisoimage is not installed")
    return found


def test_cidata_iso_reads_back_with_another_reader(tmp_path):
    isoinfo = _isoinfo()
    image = tmp_path / "seed.iso"
    image.write_bytes(
        build_cidata_iso({"user-data": USER_DATA, "meta-data": b"instance-id: aihost-x-g1\n"})
    )
    header = subprocess.run(
        [isoinfo, "-d", "-i", str(image)], capture_output=True, text=True, check=True
    ).stdout
    assert "Volume id: cidata" in header
    listing = subprocess.run(
        [isoinfo, "-f", "-J", "-i", str(image)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(listing) == ["/meta-data", "/user-data"]
    user = subprocess.run(
        [isoinfo, "-J", "-x", "/user-data", "-i", str(image)], capture_output=True, check=True
    ).stdout
    assert user == USER_DATA
    assert yaml.safe_load(user) == {"packages": ["qemu-guest-agent"]}
    rock = subprocess.run(
        [isoinfo, "-R", "-f", "-i", str(image)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "/user-data" in rock


def test_content_digest_ignores_iso_timestamps_and_follows_content():
    files = {"user-data": USER_DATA, "meta-data": b"instance-id: a\n"}
    assert content_digest(files) == content_digest(dict(reversed(list(files.items()))))
    assert content_digest(files) != content_digest({**files, "meta-data": b"instance-id: b\n"})


def test_generation_line_keeps_the_users_description():
    text = with_generation("Bought 2024.\nDo not touch.", 3)
    assert text.startswith("Bought 2024.\nDo not touch.\n")
    assert generation_of(text) == 3
    assert generation_of(with_generation(text, 4)) == 4
    assert with_generation(text, 4).count("aihost-generation") == 1
    assert generation_of(None) is None
    assert yaml.safe_load(meta_data("box", 2))["instance-id"] == instance_id("box", 2)


def test_generation_line_replaces_the_creation_mark_and_the_claim():
    made = "aihost-creating: op=0123456789ab vm=box by=me@here:1\naihost-claim: making"
    assert with_generation(made, 1) == "aihost-generation: 1\n"
