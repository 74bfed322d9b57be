"""Reading the actual state once (provision.vmops.planner.read_actual / read_state) over a
fake API: which requests it sends, and the plain data it hands the pure planner."""

from __future__ import annotations

from typing import Any

import pytest

from provision.errors import ConflictError
from provision.inventory.loader import parse_inventory
from provision.plan.desired import desired_vm
from provision.pve.pci import GpuRef
from provision.pve.session import Session
from provision.vmops.planner import read_actual, read_state

INVENTORY = """
hosts:
  pve1:
    api: https://pve1.lan:8006
    token: {id: "aihost@pve!prov", secret_env: AIHOST_TEST_TOKEN}
    cloudinit_delivery: iso
gpus:
  big: {host: pve1, mapping: big, vram_gb: 24}
vms:
  box: {host: pve1, template: tpl, gpu: big, runtime: none, disk_gb: 40}
"""


class FakeApi:
    """Answers GETs from a table of path -> data and records every request."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def get(self, path: str, **params: Any) -> Any:
        self.calls.append(path)
        if path not in self.answers:
            raise AssertionError(f"unexpected GET {path}")
        return self.answers[path]

    def post(self, path: str, **params: Any) -> Any:
        raise AssertionError(f"read_actual wrote: POST {path}")

    put = delete = post


def session_with(answers: dict[str, Any], monkeypatch) -> tuple[Session, FakeApi]:
    monkeypatch.setenv("AIHOST_TEST_TOKEN", "secret")
    session = Session(parse_inventory(INVENTORY, "inv.yaml"))
    api = FakeApi(answers)
    session._clients["pve1"] = api  # type: ignore[assignment]
    return session, api


def test_an_existing_vm_is_read_with_one_list_one_config_one_storage_listing(monkeypatch):
    # the config comes from GET .../pending (qemu-server vm_pending): current values,
    # pending ones and deletions, and the file's digest as a key
    session, api = session_with(
        {
            "/nodes/pve1/qemu": [
                {"vmid": 100, "name": "box", "status": "running", "tags": "aihost"}
            ],
            "/nodes/pve1/qemu/100/pending": [
                {"key": "digest", "value": "d1"},
                {"key": "memory", "value": "2048", "pending": "4096"},
                {"key": "hostpci0", "pending": "mapping=big,pcie=1"},
                {"key": "scsi0", "value": "local-lvm:vm-100-disk-0,size=40G"},
                {"key": "vga", "value": "std", "delete": 1},
            ],
            "/nodes/pve1/storage/local/content": [],
        },
        monkeypatch,
    )
    desired = desired_vm(session.inv, "box")
    refs = {"big": GpuRef(mapping="big")}
    actual = read_actual(session, desired, refs)
    assert api.calls == [
        "/nodes/pve1/qemu",
        "/nodes/pve1/qemu/100/pending",
        "/nodes/pve1/storage/local/content",
    ]
    assert actual.info is not None and actual.info.vmid == 100
    assert actual.digest == "d1" and "digest" not in actual.config
    assert actual.config == {  # as GET .../config shows it: pending changes applied
        "memory": "4096",
        "hostpci0": "mapping=big,pcie=1",
        "scsi0": "local-lvm:vm-100-disk-0,size=40G",
    }
    assert actual.pending == ("hostpci0", "memory", "vga")
    assert actual.template is None and actual.gpus == {}  # the GPU is attached already
    assert actual.generation == 1 and actual.delivery.mode == "iso"


def test_a_gpu_held_by_another_vm_is_read_as_a_fact_and_planned_as_a_conflict(monkeypatch):
    other = {"hostpci0": "mapping=big,pcie=1"}
    session, api = session_with(
        {
            "/nodes/pve1/qemu": [
                {"vmid": 100, "name": "box", "status": "stopped", "tags": "aihost"},
                {"vmid": 200, "name": "other", "status": "running"},
            ],
            "/nodes/pve1/qemu/100/pending": [{"key": "digest", "value": "d1"}],
            "/nodes/pve1/qemu/200/config": other,
            "/nodes/pve1/storage/local/content": [],
            "/cluster/mapping/pci/big": {"map": ["node=pve1,path=0000:01:00"], "digest": "m"},
            "/cluster/resources": [
                {"vmid": 100, "node": "pve1", "type": "qemu"},
                {"vmid": 200, "node": "pve1", "type": "qemu"},
            ],
        },
        monkeypatch,
    )
    with pytest.raises(ConflictError, match="held by VM 'other'"):
        read_state(session, "box")
    state = read_state(session, "box", plan_only=True)
    assert state.blocked and "held by VM 'other'" in state.blocked[0]
    state = read_state(session, "box", take_gpu=True)
    assert state.contested == ["big"]
    assert [a.kind for a in state.plan.actions][-2:] == ["take-gpu", "verify"]
