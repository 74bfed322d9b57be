"""The inventory's format rules agree with Proxmox's own: each sample is checked by
pve-common's PVE::JSONSchema::check_format (../shared/pve/perl, run with perl) and by
provision/inventory/pveformats.py. Ours is stricter in one way only: Perl's `$` lets a
trailing newline through, ours does not (a newline never belongs in these values)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from aihost_testing import SHARED_DIR
from pydantic import TypeAdapter, ValidationError

from provision.inventory import pveformats

FORMATS = {
    "pve-configid": pveformats.ConfigId,
    "pve-node": pveformats.NodeName,
    "pve-storage-id": pveformats.StorageId,
    "pve-bridge-id": pveformats.BridgeId,
    "dns-name": pveformats.DnsName,
    "pve-tag": pveformats.PveTag,
}
SAMPLES = [
    "vmbr0",
    "a",
    "ab",
    "a,b",
    "a=b",
    "a;b",
    "a b",
    "rtx4090",
    "Rtx_4090-x",
    "-x",
    "x-",
    "_x",
    "a.b",
    "a..b",
    ".a",
    "a.",
    "4090",
    "local-lvm",
    "pve1",
    "x+y",
    "a/b",
    "../x",
    "a:b",
    "llm-box.lan",
    "UPPER",
    "a" * 63,
    "a" * 64,
    "tab\there",
    "",
]
PERL = r"""
use PVE::JSONSchema;
while (my $line = <STDIN>) {
    chomp $line;
    my ($format, $value) = split(/\t/, $line, 2);
    $value =~ s/\\n/\n/g;
    my $ok = eval { PVE::JSONSchema::check_format($format, $value); 1 } ? 1 : 0;
    print "$ok\n";
}
"""


def _perl_verdicts(pairs: list[tuple[str, str]]) -> list[bool]:
    perl_dir = SHARED_DIR / "pve" / "perl"
    if shutil.which("perl") is None or not (perl_dir / "PVE" / "JSONSchema.pm").is_file():
        if os.environ.get("AIHOST_REQUIRE_SCHEMA") == "1":
            pytest.fail(f"perl or {perl_dir}/PVE/JSONSchema.pm is missing")
        pytest.skip("perl or pve-common's JSONSchema.pm is not available")
    stdin = "".join(f"{f}\t{v.replace(chr(10), chr(92) + 'n')}\n" for f, v in pairs)
    out = subprocess.run(
        ["perl", f"-I{perl_dir}", "-e", PERL],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line == "1" for line in out.splitlines()]


def _ours(kind: object, value: str) -> bool:
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return False
    return True


def test_formats_agree_with_pve_common():
    pairs = [(f, v) for f in FORMATS for v in SAMPLES]
    verdicts = _perl_verdicts(pairs)
    assert len(verdicts) == len(pairs)
    disagree = [
        (f, v, theirs)
        for (f, v), theirs in zip(pairs, verdicts, strict=True)
        if _ours(FORMATS[f], v) != theirs and not (f == "dns-name" and len(v) > pveformats.NAME_MAX)
    ]  # a hostname label
    assert disagree == []


def test_a_trailing_newline_is_refused_where_perl_lets_it_through():
    pairs = [(f, "vmbr0\n") for f in FORMATS]
    assert all(_perl_verdicts(pairs))  # Perl's `$` matches before a final newline
    assert not any(_ours(FORMATS[f], "vmbr0\n") for f in FORMATS)


def test_the_json_schema_carries_the_same_patterns():
    """`aihost inventory schema` lets editors flag a bad bridge or mapping while typing."""
    import re

    from provision.inventory.model import Inventory

    defs = Inventory.model_json_schema()["$defs"]
    bridge = defs["Network"]["properties"]["bridge"]["pattern"]
    mapping = defs["Gpu"]["properties"]["mapping"]["anyOf"][0]["pattern"]
    assert re.search(bridge, "vmbr0") and not re.search(bridge, "vmbr0,tag=9")
    assert re.search(mapping, "rtx4090") and not re.search(mapping, "../../nodes/x")
