"""Taking another VM id when a concurrent create got the one nextid handed out."""

from __future__ import annotations

from typing import Any

import pytest

from provision.errors import EXIT_API, EXIT_CONFLICT, ApiError, ConflictError
from provision.vmops.newid import create_with_free_id

TAKEN = "unable to create VM {}: config file already exists"


class Cluster:
    """nextid counting up, and the node's live VM list."""

    def __init__(self, names: list[dict[str, Any]] | None = None) -> None:
        self.next = 100
        self.rows = names or []

    def get(self, path: str, **_params: Any) -> Any:
        if path == "/cluster/nextid":
            self.next += 1
            return str(self.next - 1)
        assert path == "/nodes/pve1/qemu"
        return self.rows


def _taken_until(free: int) -> Any:
    def create(vmid: int) -> str:
        if vmid < free:
            raise ApiError(TAKEN.format(vmid), status=500)
        return f"UPID:{vmid}"

    return create


def test_a_taken_id_is_replaced_by_the_next_one():
    said: list[str] = []
    vmid, upid = create_with_free_id(Cluster(), None, _taken_until(102), said.append, "box", "pve1")
    assert (vmid, upid) == (102, "UPID:102")
    assert len(said) == 2 and "VM id 100 was taken" in said[0]


def test_an_inventory_id_is_never_replaced_and_taken_meanwhile_is_a_conflict():
    with pytest.raises(ConflictError) as caught:
        create_with_free_id(Cluster(), 100, _taken_until(101), lambda _m: None, "box", "pve1")
    assert caught.value.exit_code == EXIT_CONFLICT
    assert "vmid 100 (set in the inventory) was taken by another create" in str(caught.value)


def test_an_inventory_id_refused_for_another_reason_is_that_error():
    def create(vmid: int) -> str:
        raise ApiError("storage 'x' does not exist", status=500)

    with pytest.raises(ApiError) as caught:
        create_with_free_id(Cluster(), 100, create, lambda _m: None, "box", "pve1")
    assert caught.value.exit_code == EXIT_API


def test_other_errors_are_not_retried():
    def create(vmid: int) -> str:
        raise ApiError("storage 'x' does not exist", status=500)

    with pytest.raises(ApiError, match="storage"):
        create_with_free_id(Cluster(), None, create, lambda _m: None, "box", "pve1")


def test_the_same_vm_made_meanwhile_is_a_conflict_not_a_second_vm():
    cluster = Cluster([{"vmid": 100, "name": "box", "status": "stopped"}])
    with pytest.raises(Exception) as caught:
        create_with_free_id(cluster, None, _taken_until(101), lambda _m: None, "box", "pve1")
    assert caught.value.exit_code == EXIT_CONFLICT  # type: ignore[attr-defined]
    assert "VM 'box' was created meanwhile by another run (VM 100)" in str(caught.value)


def test_attempts_are_bounded():
    with pytest.raises(ApiError, match="config file already exists"):
        create_with_free_id(Cluster(), None, _taken_until(10_000), lambda _m: None, "b", "pve1")
