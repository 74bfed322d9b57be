"""preflight/readiness.py: `host check`'s verdict, text and error on plain data."""

from __future__ import annotations

from provision.errors import PreflightError
from provision.gpu.preflight import Finding, HostReport
from provision.preflight.readiness import Readiness

READY = HostReport("pve1", "pve1", [Finding("iommu", True, "on")])
NOT_READY = HostReport("pve2", "node2", [Finding("iommu", False, "off", fix="intel_iommu=on")])


def test_all_ready_is_ok_with_no_error():
    readiness = Readiness([READY], [], ["gpu0 is held by llm-box"])
    assert readiness.ok and readiness.error() is None
    assert readiness.to_text() == (
        "pve1 (node pve1): OK\n  [ok] iommu: on\nVM readiness: OK\n  note: gpu0 is held by llm-box"
    )
    assert readiness.to_json()["vms"] == {
        "ok": True,
        "problems": [],
        "notes": ["gpu0 is held by llm-box"],
    }


def test_a_host_not_ready_names_it_and_shows_the_fix():
    readiness = Readiness([READY, NOT_READY], ["box: no storage"], [])
    assert not readiness.ok
    assert "pve2 (node node2): NOT READY\n  [FAIL] iommu: off\n         fix: intel_iommu=on" in (
        readiness.to_text()
    )
    error = readiness.error()
    assert isinstance(error, PreflightError)
    assert str(error).startswith("passthrough cannot work yet on pve2")


def test_ready_hosts_with_vm_gaps_still_fail():
    readiness = Readiness([READY], ["box: no storage"], [])
    assert not readiness.ok
    assert "VM readiness: NOT READY\n  box: no storage" in readiness.to_text()
    error = readiness.error()
    assert error is not None and "VMs cannot be applied yet" in str(error)
