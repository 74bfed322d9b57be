"""The model store in a plan: which virtiofs key, and the mapping's `map` after the write."""

from __future__ import annotations

from provision.inventory.model import Inventory, ModelStore
from provision.plan.compare import config_changes
from provision.plan.desired import desired_vm
from provision.plan.model import Change
from provision.plan.store import (
    StoreFacts,
    store_actions,
    virtiofs_key,
    wanted_map,
    with_store,
    without_store,
)

MINE = "node=pve1,path=/srv/models"


def test_the_key_naming_the_mapping_is_kept_else_the_first_free_one() -> None:
    assert virtiofs_key({}, "models") == "virtiofs0"
    assert virtiofs_key({"virtiofs0": "other,cache=always"}, "models") == "virtiofs1"
    assert virtiofs_key({"virtiofs0": "other", "virtiofs3": "dirid=models"}, "models") == (
        "virtiofs3"
    )
    full = {f"virtiofs{i}": f"d{i}" for i in range(10)}
    assert virtiofs_key(full, "models") is None


def test_the_map_gets_this_nodes_entry_and_keeps_the_others() -> None:
    assert wanted_map([MINE], "pve1", "/srv/models") is None
    assert wanted_map(["node=pve2,path=/d"], "pve1", "/srv/models") == ["node=pve2,path=/d", MINE]
    moved = ["node=pve1,path=/old", "node=pve2,path=/d"]
    assert wanted_map(moved, "pve1", "/srv/models") == ["node=pve2,path=/d", MINE]


def test_a_value_naming_the_mapping_is_kept_with_its_options() -> None:
    inv = Inventory.model_validate(
        {"hosts": {"pve": {"api": "sim"}}, "vms": {"box": {"host": "pve", "template": "t"}}}
    )
    desired = desired_vm(inv, "box")
    tuned = {"virtiofs1": "models,cache=always"}
    assert with_store(desired, tuned, "virtiofs1", "models").config["virtiofs1"] == (
        "models,cache=always"
    )
    assert with_store(desired, {}, "virtiofs0", "models").config["virtiofs0"] == "models"
    other = {"virtiofs0": "other"}
    assert with_store(desired, other, "virtiofs0", "models").config["virtiofs0"] == "models"


def test_store_actions() -> None:
    store = ModelStore(path="/srv/models", mapping="models")
    assert [a.kind for a in store_actions(StoreFacts(store, "pve1", None))] == ["create-store"]
    assert store_actions(StoreFacts(store, "pve1", [MINE])) == []
    other = StoreFacts(store, "pve1", ["node=pve2,path=/d"])
    assert [a.kind for a in store_actions(other)] == ["update-store"]


def test_a_vm_left_out_of_the_store_loses_the_stores_shares_and_only_those() -> None:
    inv = Inventory.model_validate(
        {"hosts": {"pve": {"api": "sim"}}, "vms": {"box": {"host": "pve", "template": "t"}}}
    )
    desired = desired_vm(inv, "box")
    store = ModelStore(path="/srv/models", mapping="models").mapping
    config = {"virtiofs0": "userdata", "virtiofs2": "dirid=models,cache=always", "cores": "2"}
    left, note = without_store(desired, config, store, provisioned=False)
    assert (left.drop, note) == (("virtiofs2",), None)
    changes = config_changes(left.config, config, drop=left.drop)
    assert [c for c in changes if c.key.startswith("virtiofs")] == [
        Change("virtiofs2", "dirid=models,cache=always", None)
    ]
    held, why = without_store(desired, config, store, provisioned=True)
    assert held.drop == () and why is not None and why.startswith("model store: virtiofs2 stays")
    assert without_store(desired, {"virtiofs0": "userdata"}, store, False) == (desired, None)
    assert without_store(desired, config, None, False) == (desired, None)  # no store there
