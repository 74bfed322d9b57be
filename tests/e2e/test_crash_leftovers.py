"""What a crashed, killed or concurrent `vm up` leaves behind, and how the next run
deals with it (issue 14): half-made VMs, a second holder appearing mid-command, an
interrupted attach, two runs making one VM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aihost_testing import REPO_ROOT
from test_gpu_swap import GPU, aihost, api, control, holders, lease_text, vms, write_lease

from provision.errors import ApiError
from provision.gpu.lease import GpuLease
from provision.gpu.register import MappingRegister
from provision.pve.mapping import Mapping

MARK = "aihost-creating: op=0123456789ab vm=llm-box"


def _inventory(sim, tmp_path: Path) -> Path:
    plain = {"gpu": GPU, "runtime": "none"}
    return sim.inventory(tmp_path / "inv.yaml", {"llm-box": plain, "image-box": plain})


def _clone(sim, vmid: int, name: str, description: str) -> None:
    """A clone request as a `vm up` killed right after it would have left it."""
    api(
        sim,
        "POST",
        "/nodes/pve1/qemu/9000/clone",
        newid=vmid,
        name=name,
        full=1,
        description=description,
    )


def test_a_vm_left_after_its_clone_request_is_finished_by_the_rerun(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    _clone(sim, 100, "llm-box", MARK)
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 0, up.stderr
    config = api(sim, "GET", "/nodes/pve1/qemu/100/config")
    assert config["tags"] == "aihost" and "aihost-creating" not in config["description"]
    assert config["description"].startswith("aihost-generation: 1")
    assert holders(sim) == {"llm-box": "running"}
    assert [n for n in vms(sim)] == ["llm-box"]


def test_the_clone_request_itself_marks_the_vm_as_aihosts(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    before = len(sim.requests())
    assert aihost(inventory, "vm", "up", "llm-box", "--no-wait").exit_code == 0
    clone = next(r for r in sim.requests(before) if r["path"].endswith("/clone"))
    assert clone["params"]["description"].startswith("aihost-creating: op=")


def test_an_unmarked_vm_of_that_name_is_still_refused(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    _clone(sim, 100, "llm-box", "made by hand")
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 4 and "not managed by aihost" in up.stderr


def test_a_holder_made_after_the_commands_first_read_is_seen_under_the_lease(
    sim, tmp_path, monkeypatch
):
    inventory = _inventory(sim, tmp_path)
    real_begin = GpuLease.begin

    def another_run_attaches_first(self: GpuLease, **fields: object):
        # between this command's reads and its claim, another process made image-box and
        # attached the GPU to it
        if fields.get("phase") == "attaching" and "image-box" not in vms(sim):
            _clone(sim, 150, "image-box", "aihost-creating: op=0123456789ab vm=image-box")
            api(
                sim,
                "PUT",
                "/nodes/pve1/qemu/150/config",
                tags="aihost",
                hostpci0=f"mapping={GPU},pcie=1",
            )
        return real_begin(self, **fields)

    monkeypatch.setattr(GpuLease, "begin", another_run_attaches_first)
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 4, up.stderr
    assert "is held by VM 'image-box'" in up.stderr
    assert holders(sim) == {"image-box": "stopped"}
    assert '"op"' not in lease_text(sim)


def test_an_interrupted_attach_is_rolled_forward_not_undone(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    assert aihost(inventory, "vm", "up", "llm-box", "--no-wait").exit_code == 0
    vmid = vms(sim)["llm-box"]["vmid"]
    # the lease as a `vm up` killed between its config write and the lease's end leaves it
    dead = f"root@{os.uname().nodename}:{_dead_pid()}"
    record = (
        f'aihost-lease {GPU}: {{"op":"abc","owner":"{dead}","phase":"attaching",'
        f'"target":{vmid},"target_name":"llm-box","time":1}}'
    )
    write_lease(sim, record)
    again = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert again.exit_code == 0, again.stderr
    assert "recovering operation abc" in again.stderr
    assert f'"holder":{vmid}' in lease_text(sim) and '"op"' not in lease_text(sim)
    recover = aihost(inventory, "gpu", "recover", GPU)
    assert recover.exit_code == 0, recover.stderr
    assert holders(sim) == {"llm-box": "running"}


def test_recover_of_a_gpu_without_its_mapping_has_nothing_to_do(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    recover = aihost(inventory, "gpu", "recover", GPU)
    assert recover.exit_code == 0, recover.stderr


def test_two_vm_up_of_one_name_at_once_end_with_one_vm(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    control(sim, "POST", "durations", {"qmclone": 0.4})
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = [
        sys.executable,
        "-m",
        "provision",
        "-i",
        str(inventory),
        "vm",
        "up",
        "llm-box",
        "--no-wait",
    ]
    procs = [
        subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert sorted(code for code, _ in results)[0] == 0, results
    assert all(code in (0, 4) for code, _ in results), results
    rows = [r for r in api(sim, "GET", "/nodes/pve1/qemu") if not r.get("template")]
    assert [r["name"] for r in rows] == ["llm-box"], results
    assert holders(sim) == {"llm-box": "running"}


def _mapping_made_elsewhere(sim, inventory: Path) -> list[str]:
    """The map entry `gpu map` makes for the GPU, the mapping removed again: what another
    run's map-gpu creates."""
    assert aihost(inventory, "gpu", "map", GPU).exit_code == 0
    entries = list(api(sim, "GET", f"/cluster/mapping/pci/{GPU}")["map"])
    api(sim, "DELETE", f"/cluster/mapping/pci/{GPU}")
    return entries


def _creates(sim, since: int) -> list[dict]:
    return [
        r
        for r in sim.requests(since)
        if r["method"] == "POST" and r["path"].endswith("/cluster/mapping/pci")
    ]


@pytest.mark.parametrize("nth", [1, 2], ids=["recovery-read", "plan-read"])
def test_a_mapping_made_right_after_a_failed_lease_read_is_used(sim, tmp_path, monkeypatch, nth):
    inventory = _inventory(sim, tmp_path)
    entries = _mapping_made_elsewhere(sim, inventory)
    real_read = MappingRegister._get
    failed = []

    def twin_maps_it_meanwhile(self: MappingRegister):
        # this run reads the lease (the mapping's description: first for recovery, then
        # for the plan) and finds no mapping; the twin's map-gpu creates it before this
        # run asks whether it exists
        try:
            return real_read(self)
        except ApiError:
            failed.append(1)
            if len(failed) == nth:
                api(sim, "POST", "/cluster/mapping/pci", id=GPU, map=entries)
            raise

    monkeypatch.setattr(MappingRegister, "_get", twin_maps_it_meanwhile)
    before = len(sim.requests())
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 0, up.stderr
    assert len(_creates(sim, before)) == 1  # the twin's only
    assert api(sim, "GET", f"/cluster/mapping/pci/{GPU}")["map"] == entries
    assert holders(sim) == {"llm-box": "running"}


def test_a_mapping_made_between_the_check_and_the_create_is_used(sim, tmp_path, monkeypatch):
    inventory = _inventory(sim, tmp_path)
    entries = _mapping_made_elsewhere(sim, inventory)
    real_create = Mapping.create

    def twin_creates_first(self: Mapping, mine: list[str]) -> None:
        if not _creates(sim, before):
            api(sim, "POST", "/cluster/mapping/pci", id=GPU, map=entries)
        real_create(self, mine)

    monkeypatch.setattr(Mapping, "create", twin_creates_first)
    before = len(sim.requests())
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 0, up.stderr
    refused = _creates(sim, before)[1:]
    assert len(refused) == 1 and refused[0]["status"] == 500, refused
    assert api(sim, "GET", f"/cluster/mapping/pci/{GPU}")["map"] == entries
    assert holders(sim) == {"llm-box": "running"}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_vm_destroy_leaves_the_lease_without_a_holder(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    assert aihost(inventory, "vm", "up", "llm-box", "--no-wait").exit_code == 0
    assert '"holder":100' in lease_text(sim)
    gone = aihost(inventory, "vm", "destroy", "llm-box", "--yes")
    assert gone.exit_code == 0, gone.stderr
    assert '"holder"' not in lease_text(sim)


def test_a_new_vm_removed_after_a_failed_step_leaves_no_holder_in_the_lease(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    control(sim, "POST", "faults", {"kind": "http500", "method": "PUT", "path": "/resize$"})
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 3, up.stderr
    assert "removed the new VM 100 again" in up.stderr
    assert vms(sim) == {} and '"holder"' not in lease_text(sim)


def test_an_attach_whose_answer_is_lost_records_the_holder_its_config_names(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    assert aihost(inventory, "vm", "up", "llm-box", "--no-wait").exit_code == 0
    assert aihost(inventory, "gpu", "release", GPU).exit_code == 0
    # the config write goes through; every read of its task's status fails
    control(
        sim,
        "POST",
        "faults",
        {
            "kind": "http500",
            "method": "GET",
            "count": 0,
            "path": "/tasks/[^/]*qmconfig[^/]*/status",
        },
    )
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 3, up.stderr
    control(sim, "DELETE", "faults")
    assert holders(sim) == {"llm-box": "stopped"}
    assert '"holder":100' in lease_text(sim) and '"op"' not in lease_text(sim)


def test_vm_up_all_creates_each_mapping_once(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    before = len(sim.requests())
    up = aihost(inventory, "-o", "json", "vm", "up", "--all", "--take-gpu", "--no-wait")
    creates = [
        r
        for r in sim.requests(before)
        if r["method"] == "POST" and r["path"].endswith("/cluster/mapping/pci")
    ]
    assert len(creates) == 1, (creates, up.stderr)
    assert "already defined" not in up.stderr
    assert len(holders(sim)) == 1, (up.exit_code, up.stderr)


def test_recover_waits_for_the_start_a_killed_swap_left_running(sim, tmp_path):
    from test_gpu_swap import world

    inventory = world(sim, tmp_path)
    target = vms(sim)["image-box"]["vmid"]
    control(sim, "POST", "durations", {"qmstart": 1.5})
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    since = len(sim.requests())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provision",
            "-i",
            str(inventory),
            "gpu",
            "swap",
            GPU,
            "--to",
            "image-box",
            "--no-verify",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    start = f"/qemu/{target}/status/start"
    while not any(r["path"].endswith(start) for r in sim.requests(since)):
        assert proc.poll() is None, "the swap ended before starting its target"
    proc.kill()
    proc.wait()
    recover = aihost(inventory, "gpu", "recover", GPU)
    assert recover.exit_code == 0, recover.stderr
    assert "finished" in recover.stdout + recover.stderr
    assert holders(sim) == {"image-box": "running"}
    assert f'"holder":{target}' in lease_text(sim) and '"op"' not in lease_text(sim)


def test_a_swap_that_lost_sight_of_its_targets_start_rolls_back_after_it(sim, tmp_path):
    from test_gpu_swap import world

    inventory = world(sim, tmp_path)
    target = vms(sim)["image-box"]["vmid"]
    holder = vms(sim)["llm-box"]["vmid"]
    control(sim, "POST", "durations", {"qmstart": 0.5})
    control(
        sim,
        "POST",
        "faults",
        {"kind": "http500", "method": "GET", "path": f"/tasks/[^/]*:qmstart:{target}:[^/]*/status"},
    )
    swap = aihost(inventory, "gpu", "swap", GPU, "--to", "image-box", "--no-verify")
    assert swap.exit_code == 3, swap.stderr
    assert "rolled back: stopped VM" in swap.stderr, swap.stderr
    assert holders(sim) == {"llm-box": "running"}
    assert f'"holder":{holder}' in lease_text(sim) and '"op"' not in lease_text(sim)


def test_a_lost_answer_to_the_claims_last_lease_write_is_retried(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    assert aihost(inventory, "vm", "up", "image-box", "--no-wait").exit_code == 0
    assert aihost(inventory, "vm", "destroy", "image-box", "--yes").exit_code == 0
    # the claim's first lease write goes through, the second's connection drops
    control(
        sim,
        "POST",
        "faults",
        {"kind": "drop", "method": "PUT", "nth": 2, "path": f"/cluster/mapping/pci/{GPU}$"},
    )
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 0, up.stderr
    vmid = vms(sim)["llm-box"]["vmid"]
    assert f'"holder":{vmid}' in lease_text(sim) and '"op"' not in lease_text(sim)


def test_recover_of_an_attach_whose_vm_is_gone_ends_the_operation(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    assert aihost(inventory, "vm", "up", "image-box", "--no-wait").exit_code == 0
    assert aihost(inventory, "vm", "destroy", "image-box", "--yes").exit_code == 0
    dead = f"root@{os.uname().nodename}:{_dead_pid()}"
    record = (
        f'aihost-lease {GPU}: {{"op":"abc","owner":"{dead}","phase":"attaching",'
        f'"target":150,"target_name":"llm-box","time":1}}'
    )
    write_lease(sim, record)
    recover = aihost(inventory, "gpu", "recover", GPU)
    assert recover.exit_code == 0, recover.stderr
    assert '"op"' not in lease_text(sim) and '"holder"' not in lease_text(sim)


def test_a_half_made_vm_removed_between_the_listing_and_its_read_is_a_conflict(
    sim, tmp_path, monkeypatch
):
    from provision.pve.vm import Vm

    inventory = _inventory(sim, tmp_path)
    _clone(sim, 150, "llm-box", "aihost-creating: op=0123456789ab vm=llm-box")
    real_config = Vm.config
    removed: list[int] = []

    def twin_removed_first(self: Vm) -> dict:
        # the run that made VM 150 lost its twin contest and removes it right after this
        # run listed the node
        if self.vmid == 150 and not removed:
            removed.append(150)
            api(sim, "DELETE", "/nodes/pve1/qemu/150", purge=1)
        return real_config(self)

    monkeypatch.setattr(Vm, "config", twin_removed_first)
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    # a conflict with another run (exit 4, as a lost twin contest), not an API failure
    assert removed and up.exit_code == 4, up.stderr
    assert "VM 150 (llm-box) was removed by another run just now" in up.stderr
    assert vms(sim) == {}
    again = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert again.exit_code == 0, again.stderr
