"""Which VMs hold a GPU: read from every config on the node, as listed a moment before."""

from __future__ import annotations

from typing import Any

import pytest

from provision.errors import ApiError
from provision.gpu.context import GpuContext
from provision.pve.cluster import VmInfo
from provision.pve.pci import GpuRef

GONE = (
    "GET /nodes/pve1/qemu/{vmid}/config failed: "
    "Configuration file 'nodes/pve1/qemu-server/{vmid}.conf' does not exist"
)


class FakeVm:
    def __init__(self, vmid: int, configs: dict[int, Any]) -> None:
        self.vmid, self.configs = vmid, configs

    def config(self) -> dict[str, Any]:
        found = self.configs[self.vmid]
        if isinstance(found, ApiError):
            raise found
        return dict(found)


class FakeNode:
    def __init__(self, configs: dict[int, Any]) -> None:
        self.configs = configs

    def vm(self, vmid: int) -> FakeVm:
        return FakeVm(vmid, self.configs)


def context(monkeypatch: pytest.MonkeyPatch, configs: dict[int, Any]) -> GpuContext:
    """A GpuContext over a node whose list names every vmid of configs."""
    listed = [VmInfo(vmid, f"vm{vmid}", "pve1", "stopped") for vmid in configs]
    monkeypatch.setattr("provision.gpu.context.node_vms", lambda _client, _node: listed)
    ctx = object.__new__(GpuContext)
    ctx.name, ctx.node, ctx.client = "rtx4090", "pve1", None
    ctx.ref = GpuRef(mapping="rtx4090")
    ctx.pve_node = FakeNode(configs)  # type: ignore[assignment]
    return ctx


def test_a_vm_removed_between_the_listing_and_its_config_read_holds_nothing(monkeypatch):
    # `vm up --all`: another VM of the same run removed its new VM after a failure
    ctx = context(
        monkeypatch,
        {
            100: {"name": "llm-box", "hostpci0": "mapping=rtx4090,pcie=1"},
            101: ApiError(GONE.format(vmid=101), status=500),
        },
    )
    assert [(h.vmid, h.name, h.keys) for h in ctx.holders()] == [(100, "llm-box", ("hostpci0",))]


def test_any_other_failure_to_read_a_config_is_still_an_error(monkeypatch):
    ctx = context(
        monkeypatch,
        {101: ApiError("GET /nodes/pve1/qemu/101/config failed: HTTP 500", status=500)},
    )
    with pytest.raises(ApiError, match="HTTP 500"):
        ctx.holders()
