"""`vm up` with a shared model store: the directory mapping made once, `virtiofs0` on the
GPU VM, the guest's models kept in the store, so a re-created VM downloads 0 bytes; a
node before PVE 8.4 falls back to the VM's disk; pre-flight and a missing directory."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from aihost_testing import run_aihost
from proxmoxer import ProxmoxAPI

from provision.sim.fixture import DEFAULT_FIXTURE

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}
STORE = {"model_store": {"path": "/srv/aihost-models"}}
LLAMA31_8B = 4_920_753_328  # provision.sim.guest_models: Ollama /api/tags size


def _fixture(tmp_path: Path, **node: object) -> Path:
    data = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    data["nodes"]["pve1"].update(node)
    path = tmp_path / "fixture.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _aihost(inventory: Path, *args: str):
    return run_aihost("-i", str(inventory), *args)


def _api(sim) -> ProxmoxAPI:
    server = sim.server
    host, port = server.url.removeprefix("https://").split(":")
    user, token = server.token_id.split("!")
    return ProxmoxAPI(
        host,
        port=int(port),
        user=user,
        token_name=token,
        token_value=server.token_secret,
        verify_ssl=str(server.cert_path),
    )


def _vm(api: ProxmoxAPI, name: str):
    (vmid,) = [v["vmid"] for v in api.nodes("pve1").qemu.get() if v.get("name") == name]
    return api.nodes("pve1").qemu(vmid)


def _models_phase(api: ProxmoxAPI, name: str) -> dict:
    """The models phase of the guest's own state file (read through its agent)."""
    read = _vm(api, name).agent("file-read").get(file="/var/lib/aihost/state.json")
    return json.loads(read["content"])["phases"]["models"]


def test_store_made_once_virtiofs_set_and_a_rerun_changes_nothing(sim_from, tmp_path):
    sim = sim_from(_fixture(tmp_path, dirs=["/srv/aihost-models"]))
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=STORE)
    first = _aihost(inventory, "vm", "up", "llm-box")
    assert first.exit_code == 0, first.stderr
    api = _api(sim)
    mapping = api.cluster.mapping.dir("aihost-models").get()
    assert mapping["map"] == ["node=pve1,path=/srv/aihost-models"]
    assert _vm(api, "llm-box").config.get()["virtiofs0"] == "aihost-models"
    phase = _models_phase(api, "llm-box")
    assert (phase["downloaded_bytes"], phase["stored_bytes"]) == (LLAMA31_8B, 0)
    before = len(sim.requests())
    again = _aihost(inventory, "vm", "up", "llm-box")
    assert again.exit_code == 0, again.stderr
    assert "no changes" in again.stdout
    log = sim.requests(before)
    assert [r for r in log if r["method"] != "GET"] == []
    paths = [r["path"].removeprefix("/api2/json") for r in log]
    assert "/version" in paths and "/cluster/mapping/dir/aihost-models" in paths


def test_a_recreated_vm_finds_its_model_in_the_store_and_downloads_nothing(sim_from, tmp_path):
    sim = sim_from(_fixture(tmp_path, dirs=["/srv/aihost-models"]))
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=STORE)
    assert _aihost(inventory, "vm", "up", "llm-box").exit_code == 0
    gone = _aihost(inventory, "vm", "destroy", "llm-box", "--yes")
    assert gone.exit_code == 0, gone.stderr
    before = len(sim.requests())
    again = _aihost(inventory, "vm", "up", "llm-box")
    assert again.exit_code == 0, again.stderr
    writes = [r["path"] for r in sim.writes(before)]
    assert not [p for p in writes if "/cluster/mapping/dir" in p]  # the mapping stayed
    phase = _models_phase(_api(sim), "llm-box")
    assert (phase["downloaded_bytes"], phase["stored_bytes"]) == (0, LLAMA31_8B)


def test_the_store_keeps_other_nodes_entries(sim_from, tmp_path):
    """A mapping made for another node gets this node's entry, its `map` sent whole with
    the digest read (Dir.pm `update` requires `map`)."""
    sim = sim_from(_fixture(tmp_path, dirs=["/srv/aihost-models"]))
    api = _api(sim)
    api.cluster.mapping.dir.post(id="aihost-models", map=["node=pve2,path=/data"])
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=STORE)
    plan = _aihost(inventory, "vm", "plan", "llm-box")
    assert "set directory mapping 'aihost-models': node=pve1,path=/srv/aihost-models" in (
        plan.stdout
    )
    before = len(sim.requests())
    assert _aihost(inventory, "vm", "up", "llm-box").exit_code == 0
    (put,) = [r for r in sim.writes(before) if r["path"].endswith("/mapping/dir/aihost-models")]
    assert put["method"] == "PUT" and put["params"]["digest"]
    assert api.cluster.mapping.dir("aihost-models").get()["map"] == [
        "node=pve2,path=/data",
        "node=pve1,path=/srv/aihost-models",
    ]


def test_before_pve_84_the_vm_keeps_its_models_on_its_disk(sim_from, tmp_path):
    fixture = _fixture(tmp_path)
    data = yaml.safe_load(fixture.read_text())
    fixture.write_text(yaml.safe_dump({**data, "version": "8.3.5"}))
    sim = sim_from(fixture)
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=STORE)
    result = _aihost(inventory, "vm", "up", "llm-box")
    assert result.exit_code == 0, result.stderr
    assert "Proxmox VE 8.3 has no directory mappings" in result.stdout + result.stderr
    assert "virtiofs0" not in _vm(_api(sim), "llm-box").config.get()
    assert not [r for r in sim.requests() if "/mapping/dir" in r["path"]]
    snippet = sim.state_dir / "storage" / "local" / "snippets" / "aihost-llm-box-user.yaml"
    assert "virtiofs" not in snippet.read_text()


def test_preflight_names_the_mapping_privilege_and_writes_nothing(sim_from, tmp_path):
    sim = sim_from(_fixture(tmp_path, dirs=["/srv/aihost-models"]))
    secret = tmp_path / "secret"
    secret.write_text(sim.server.secret_for("aihost@pve!nomapping") + "\n")
    token = {"token": {"id": "aihost@pve!nomapping", "secret_file": str(secret)}}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host={**STORE, **token})
    result = _aihost(inventory, "vm", "up", "llm-box")
    assert result.exit_code == 2, result.stderr
    assert "Mapping.Modify on /mapping/dir" in result.stderr
    assert "Mapping.Use on /mapping/dir/aihost-models" in result.stderr
    assert sim.writes() == []


def test_a_store_directory_missing_on_the_node_is_one_clear_error(sim_from, tmp_path):
    sim = sim_from(_fixture(tmp_path))
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=STORE)
    result = _aihost(inventory, "vm", "up", "llm-box")
    assert result.exit_code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("aihost: error")]
    assert lines == [
        "aihost: error: model store: /srv/aihost-models does not exist on node pve1, so "
        "Proxmox refuses the directory mapping 'aihost-models' (create it there: "
        "mkdir -p /srv/aihost-models)"
    ]
    # the refused create is the only write: nothing was made
    writes = [(w["method"], w["path"], w["status"]) for w in sim.writes()]
    assert writes == [("POST", "/api2/json/cluster/mapping/dir", 500)]


def test_another_vm_on_the_node_with_the_same_model_downloads_nothing(sim_from, tmp_path):
    sim = sim_from(_fixture(tmp_path, dirs=["/srv/aihost-models"]))
    vms = {"llm-box": LLM, "llm-two": {**LLM, "gpu": "rtx3060"}}
    inventory = sim.inventory(tmp_path / "inv.yaml", vms, host=STORE)
    plan = _aihost(inventory, "vm", "plan", "llm-box")
    assert "create directory mapping 'aihost-models' (node=pve1,path=/srv/aihost-models)" in (
        plan.stdout
    )
    assert _aihost(inventory, "vm", "up", "llm-box").exit_code == 0
    second = _aihost(inventory, "vm", "up", "llm-two")
    assert second.exit_code == 0, second.stderr
    api = _api(sim)
    assert _vm(api, "llm-two").config.get()["virtiofs0"] == "aihost-models"
    phase = _models_phase(api, "llm-two")
    assert (phase["downloaded_bytes"], phase["stored_bytes"]) == (0, LLAMA31_8B)


def _stored_with_a_share_of_the_users(sim_from, tmp_path):
    """llm-box made with the store on virtiofs0, and a share of the user's own mapping
    added by hand on virtiofs1: (the simulator, a proxmoxer client of it)."""
    sim = sim_from(_fixture(tmp_path, dirs=["/srv/aihost-models", "/srv/data"]))
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=STORE)
    assert _aihost(inventory, "vm", "up", "llm-box").exit_code == 0
    api = _api(sim)
    api.cluster.mapping.dir.post(id="userdata", map=["node=pve1,path=/srv/data"])
    _vm(api, "llm-box").config.put(virtiofs1="userdata")
    return sim, api


def test_opting_out_removes_only_the_stores_virtiofs_at_the_re_provision(sim_from, tmp_path):
    """`model_store: false` on a VM that has the store: its guest keeps its models there
    until re-provisioned, so virtiofs0 stays (the plan says why); `--reprovision` deletes
    it, and only it (a user's own share stays), with a user-data that mounts nothing."""
    sim, api = _stored_with_a_share_of_the_users(sim_from, tmp_path)
    out = sim.inventory(
        tmp_path / "out.yaml", {"llm-box": {**LLM, "model_store": False}}, host=STORE
    )
    plan = _aihost(out, "vm", "plan", "llm-box")
    assert plan.exit_code == 0, plan.stderr
    assert "model store: virtiofs0 stays while the guest keeps its models in the store" in (
        plan.stdout
    )
    held = _aihost(out, "vm", "up", "llm-box")
    assert held.exit_code == 0, held.stderr
    assert _vm(api, "llm-box").config.get()["virtiofs0"] == "aihost-models"
    before = len(sim.requests())
    moved = _aihost(out, "vm", "up", "llm-box", "--reprovision")
    assert moved.exit_code == 0, moved.stderr
    config = _vm(api, "llm-box").config.get()
    assert "virtiofs0" not in config and config["virtiofs1"] == "userdata"
    (write,) = [w for w in sim.writes(before) if "delete" in w["params"]]
    assert write["params"]["delete"] == "virtiofs0"
    snippet = sim.state_dir / "storage" / "local" / "snippets" / "aihost-llm-box-user.yaml"
    assert "virtiofs" not in snippet.read_text() and "OLLAMA_MODELS" not in snippet.read_text()
    before = len(sim.requests())
    again = _aihost(out, "vm", "up", "llm-box")
    assert again.exit_code == 0, again.stderr
    assert "no changes" in again.stdout and sim.writes(before) == []


def test_a_host_without_its_store_any_more_drops_the_stores_virtiofs(sim_from, tmp_path):
    """`model_store:` taken off the host: the VM's virtiofs0 names a mapping aihost made
    (its description says so), so it goes too, at the re-provision that stops the guest
    keeping its models there; a share of the user's own mapping stays. Left behind, it
    would make the VM's start fail once the mapping is deleted."""
    sim, api = _stored_with_a_share_of_the_users(sim_from, tmp_path)
    gone = sim.inventory(tmp_path / "gone.yaml", {"llm-box": LLM})
    plan = _aihost(gone, "vm", "plan", "llm-box")
    assert plan.exit_code == 0, plan.stderr
    assert "model store: virtiofs0 stays while the guest keeps its models in the store" in (
        plan.stdout
    )
    moved = _aihost(gone, "vm", "up", "llm-box", "--reprovision")
    assert moved.exit_code == 0, moved.stderr
    config = _vm(api, "llm-box").config.get()
    assert "virtiofs0" not in config and config["virtiofs1"] == "userdata"
    before = len(sim.requests())
    again = _aihost(gone, "vm", "up", "llm-box")
    assert again.exit_code == 0, again.stderr
    assert "no changes" in again.stdout and sim.writes(before) == []
    reads = [r["path"] for r in sim.requests()[before:] if "/mapping/dir/" in r["path"]]
    assert reads == ["/api2/json/cluster/mapping/dir/userdata"]  # one read per share left


def test_two_vms_coming_up_together_take_turns_at_the_store(sim_from, tmp_path):
    """`vm up --all` of two GPU VMs of one store with the same model: the guest model
    takes turns as aihost-state store-lock makes the real guests do (provision/sim/
    store_turns.py). The VM whose models phase comes second waits for the first (its
    state file and aihost's progress name it), then finds the model in the store and
    downloads nothing; the first downloads it all."""
    sim = sim_from(_fixture(tmp_path, dirs=["/srv/aihost-models"]))
    sim.control("durations", {"guest_runtime": 0.05, "guest_pull_s_per_gb": 0.4})  # ~2 s
    vms = {"llm-box": LLM, "llm-two": {**LLM, "gpu": "rtx3060"}}
    inventory = sim.inventory(tmp_path / "inv.yaml", vms, host=STORE)
    result = _aihost(inventory, "vm", "up", "--all")
    assert result.exit_code == 0, result.stderr
    api = _api(sim)
    phases = {name: _models_phase(api, name) for name in vms}
    bytes_of = {name: (p["downloaded_bytes"], p["stored_bytes"]) for name, p in phases.items()}
    assert sorted(bytes_of.values()) == [(0, LLAMA31_8B), (LLAMA31_8B, 0)], bytes_of
    (second,) = [name for name, got in bytes_of.items() if got == (0, LLAMA31_8B)]
    (first,) = set(vms) - {second}
    waits = [ln for ln in result.stderr.splitlines() if "to finish its download" in ln]
    assert waits and all(
        ln.startswith(f"{second}: first boot: waiting for {first} (") for ln in waits
    )
    assert not [
        ln
        for ln in result.stderr.splitlines()
        if ln.startswith(f"{second}: first boot: downloading")
    ]
