"""`aihost vm up` end to end against the simulated Proxmox over HTTPS and SFTP."""

from __future__ import annotations

from aihost_testing import run_aihost

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}


def _up(inventory, *args: str):
    return run_aihost("-i", str(inventory), "vm", "up", *args)


def _config(sim, name: str) -> dict:
    from proxmoxer import ProxmoxAPI

    server = sim.server

    host, port = server.url.removeprefix("https://").split(":")
    user, token = server.token_id.split("!")
    api = ProxmoxAPI(
        host,
        port=int(port),
        user=user,
        token_name=token,
        token_value=server.token_secret,
        verify_ssl=str(server.cert_path),
    )
    for vm in api.nodes("pve1").qemu.get():  # live; /cluster/resources lags
        if vm.get("name") == name and not vm.get("template"):
            return {"_vm": vm, **api.nodes("pve1").qemu(vm["vmid"]).config.get()}
    raise AssertionError(f"no VM {name}")


def test_fresh_clone_gets_passthrough_config_starts_and_proves_the_gpu(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    result = _up(inventory, "llm-box")
    assert result.exit_code == 0, result.stderr
    assert "GPU: NVIDIA GeForce RTX 4090" in result.stdout
    assert "LLM endpoint: http://127.0.0.1:11434" in result.stdout
    config = _config(sim, "llm-box")
    assert config["_vm"]["status"] == "running"
    assert "aihost" in config["tags"]
    assert sorted(config["hostpci0"].split(",")) == ["mapping=rtx4090", "pcie=1"]
    assert config["machine"].endswith("q35") and config["bios"] == "ovmf"
    assert "pre-enrolled-keys=0" in config["efidisk0"]
    assert config["cicustom"].startswith("user=local:snippets/aihost-llm-box-user.yaml")
    snippet = sim.state_dir / "storage" / "local" / "snippets" / "aihost-llm-box-user.yaml"
    assert snippet.read_text().startswith("#cloud-config")


def test_rerun_on_a_converged_vm_writes_nothing(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    assert _up(inventory, "llm-box").exit_code == 0
    before = len(sim.requests())
    again = _up(inventory, "llm-box")
    assert again.exit_code == 0, again.stderr
    assert "no changes" in again.stdout
    log = sim.requests(before)
    assert [r for r in log if r["method"] != "GET"] == []
    # the GPU's lease (an operation a crashed run left is rolled forward first), the node's
    # live VM list (/cluster/resources lags), the config with what waits in [PENDING],
    # the snippet storage, and the guest's address (DHCP) to show where the VM is
    assert [r["path"].removeprefix("/api2/json") for r in log] == [
        "/cluster/mapping/pci/rtx4090",
        "/nodes/pve1/qemu",
        "/nodes/pve1/qemu/100/pending",
        "/nodes/pve1/storage",
        "/nodes/pve1/qemu/100/agent/network-get-interfaces",
    ]
    assert "address: " in again.stdout and "way in: " in again.stdout


def test_a_changed_value_plans_exactly_that_change(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    assert _up(inventory, "llm-box").exit_code == 0
    sim.inventory(inventory, {"llm-box": {**LLM, "cores": 6}})
    plan = run_aihost("-i", str(inventory), "-o", "json", "vm", "plan", "llm-box")
    assert plan.exit_code == 0, plan.stderr
    actions = plan.json()[0]["actions"]
    configure = [a for a in actions if a["kind"] == "configure"]
    assert len(configure) == 1
    assert configure[0]["changes"] == [{"key": "cores", "old": "4", "new": "6"}]


def test_gpu_held_by_another_vm_is_refused_with_the_holder_and_nothing_written(sim, tmp_path):
    inventory = sim.inventory(
        tmp_path / "inv.yaml",
        {
            "llm-box": LLM,
            "image-box": {"gpu": "rtx4090", "runtime": "none"},
        },
    )
    assert _up(inventory, "llm-box").exit_code == 0
    before = len(sim.requests())
    result = _up(inventory, "image-box")
    assert result.exit_code == 4
    assert "held by VM 'llm-box'" in result.stderr
    # image-box does not exist yet: a swap needs both VMs, so only --take-gpu is hinted
    assert "`aihost vm up image-box --take-gpu`" in result.stderr
    assert "gpu swap" not in result.stderr
    assert sim.writes(before) == []


def test_no_wait_skips_the_guest_checks(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    result = _up(inventory, "llm-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    assert not [r for r in sim.requests() if "/agent/" in r["path"]]


def test_create_by_importing_a_cloud_image(sim, tmp_path):
    vm = {
        "template": None,
        "image": "local:import/noble-server-cloudimg-amd64.qcow2",
        "runtime": "none",
    }
    inventory = sim.inventory(tmp_path / "inv.yaml", {"img-box": vm})
    result = _up(inventory, "img-box")
    assert result.exit_code == 0, result.stderr
    config = _config(sim, "img-box")
    assert "import" not in config["scsi0"] and config["scsi0"].startswith("local-lvm:")
    assert config["_vm"]["status"] == "running"


def test_a_fresh_vm_up_reads_a_mapped_gpus_mapping_once_before_writing(sim, tmp_path):
    # the recovery check reads it (the lease in its description is free) and the read-only
    # is-it-free pre-check takes that read, as the pre-checks take the command's first node
    # list; the claim re-reads it under compare-and-set after the clone
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    mapped = run_aihost("-i", str(inventory), "gpu", "map", "rtx4090", "--pci", "0000:01:00")
    assert mapped.exit_code == 0, mapped.stderr
    before = len(sim.requests())
    assert _up(inventory, "llm-box", "--no-wait").exit_code == 0
    log = sim.requests(before)
    first_write = next(i for i, r in enumerate(log) if r["method"] != "GET")
    path = "/api2/json/cluster/mapping/pci/rtx4090"
    assert [r["method"] for r in log[:first_write] if r["path"] == path] == ["GET"]


def test_a_fresh_vm_up_reads_its_nodes_storage_list_once(sim, tmp_path):
    # the plan (is `snippets` allowed?) and its pre-flight (every content type it needs)
    # look at the same list: aihost changes no storage
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    before = len(sim.requests())
    assert _up(inventory, "llm-box", "--no-wait").exit_code == 0
    log = sim.requests(before)
    assert [r["method"] for r in log if r["path"] == "/api2/json/nodes/pve1/storage"] == ["GET"]
