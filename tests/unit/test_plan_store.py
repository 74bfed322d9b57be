"""The model store in a plan: which virtiofs key, and the mapping's `map` after the write."""

from __future__ import annotations

from provision.inventory.model import Inventory, ModelStore
from provision.plan.desired import desired_vm
from provision.plan.store import StoreFacts, store_actions, virtiofs_key, wanted_map, with_store

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
