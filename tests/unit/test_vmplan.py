"""The pure planner (provision.plan.vmplan.plan_vm) on plain data: no HTTP, no inventory file.

Each case is a desired VM and what Proxmox has; the expected plan is its action kinds in
order, and the parameters the executor and the pre-flight read from them.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from provision.delivery.plan import DeliveryPlan
from provision.errors import ConflictError
from provision.plan.desired import DesiredVm
from provision.plan.model import Action
from provision.plan.vmplan import Actual, GpuFacts, PlanOptions, plan_vm
from provision.pve.cluster import VmInfo
from provision.pve.pci import GpuRef, PciAddress

GPUS = {"big": GpuRef(mapping="big"), "raw": GpuRef(address=PciAddress.parse("02:00"))}
BASE = {
    "name": "box",
    "tags": "aihost",
    "cores": "4",
    "memory": "8192",
    "net0": "virtio,bridge=vmbr0",
    "description": "gen 1",
}
DESIRED = DesiredVm(
    name="box",
    host_name="pve1",
    node="pve1",
    vmid=None,
    template="tpl",
    image=None,
    disk_storage="local-lvm",
    disk_gb=40,
    config=dict(BASE),
    start_timeout=30,
)
CONVERGED = {
    **BASE,
    "net0": "virtio=AA:BB:CC:DD:EE:FF,bridge=vmbr0",
    "scsi0": "local-lvm:vm-100-disk-0,size=40G",
}
UPLOAD = Action("upload-user-data", "upload local:snippets/aihost-box-user.yaml")


def vm(status: str = "running") -> VmInfo:
    return VmInfo(vmid=100, name="box", node="pve1", status=status, tags=["aihost"])


def actual(
    config: dict,
    *,
    info: VmInfo | None = None,
    template: bool = False,
    uploads: tuple[Action, ...] = (),
    **extra,
) -> Actual:
    source = VmInfo(vmid=9000, name="tpl", node="pve1", status="stopped", template=True)
    return Actual(
        info=info,
        template=source if template else None,
        config=dict(config),
        digest="d1" if info else None,
        delivery=DeliveryPlan("snippet", {}, (), list(uploads)),
        description="gen 1",
        **extra,
    )


def kinds(state) -> list[str]:
    return [a.kind for a in state.plan.actions]


def with_gpu(desired: DesiredVm, name: str, value: str) -> DesiredVm:
    return replace(desired, config={**desired.config, "hostpci0": value}, gpu_names=(name,))


CASES = [
    # (id, desired, actual, options, expected kinds)
    ("converged running VM: nothing", DESIRED, actual(CONVERGED, info=vm()), PlanOptions(), []),
    (
        "converged stopped VM: start and verify",
        DESIRED,
        actual(CONVERGED, info=vm("stopped")),
        PlanOptions(),
        ["start", "verify"],
    ),
    (
        "new VM from a template",
        DESIRED,
        actual({"scsi0": "local-lvm:base,size=10G"}, template=True, uploads=(UPLOAD,)),
        PlanOptions(),
        ["clone", "upload-user-data", "configure", "resize", "start", "verify"],
    ),
    (
        "new VM from an image: the config goes with the create",
        replace(DESIRED, template=None, image="local:import/noble.qcow2"),
        actual({}),
        PlanOptions(),
        ["create", "start", "verify"],
    ),
    (
        "warm key on a running VM: no restart",
        DESIRED,
        actual({**CONVERGED, "tags": "x"}, info=vm()),
        PlanOptions(),
        ["configure", "verify"],
    ),
    (
        "cold key on a running VM: restart",
        DESIRED,
        actual({**CONVERGED, "cores": "2"}, info=vm()),
        PlanOptions(),
        ["configure", "restart", "verify"],
    ),
    (
        "re-provision of a converged running VM: restart only",
        DESIRED,
        actual(CONVERGED, info=vm(), reprovision=True),
        PlanOptions(),
        ["restart", "verify"],
    ),
    (
        "a small disk grows, never shrinks",
        replace(DESIRED, disk_gb=64),
        actual(CONVERGED, info=vm()),
        PlanOptions(),
        ["resize", "verify"],
    ),
    (
        "a bigger disk stays",
        replace(DESIRED, disk_gb=20),
        actual(CONVERGED, info=vm()),
        PlanOptions(),
        [],
    ),
    (
        "a GPU whose mapping is missing: map it first",
        with_gpu(DESIRED, "big", "mapping=big,pcie=1"),
        actual(CONVERGED, info=vm("stopped"), gpus={"big": GpuFacts(card="card")}),
        PlanOptions(),
        ["map-gpu", "configure", "start", "verify"],
    ),
    (
        "a GPU another VM holds, --take-gpu: swap, no start of our own",
        with_gpu(DESIRED, "big", "mapping=big,pcie=1"),
        actual(CONVERGED, info=vm("stopped"), gpus={"big": GpuFacts(held=ConflictError("x"))}),
        PlanOptions(take_gpu=True),
        ["configure", "take-gpu", "verify"],
    ),
    (
        "resize comes before the swap that starts the VM",
        replace(with_gpu(DESIRED, "big", "mapping=big,pcie=1"), disk_gb=64),
        actual(CONVERGED, info=vm("running"), gpus={"big": GpuFacts(held=ConflictError("x"))}),
        PlanOptions(take_gpu=True),
        ["configure", "resize", "take-gpu", "verify"],
    ),
    (
        "a GPU another VM holds, vm plan: a note, left alone",
        with_gpu(DESIRED, "big", "mapping=big,pcie=1"),
        actual(CONVERGED, info=vm("stopped"), gpus={"big": GpuFacts(held=ConflictError("x"))}),
        PlanOptions(plan_only=True),
        ["configure"],
    ),
    (
        "a shared GPU deferred to another VM: made, not started",
        DESIRED,
        actual({"scsi0": "local-lvm:base,size=40G"}, template=True),
        PlanOptions(deferred=("big",)),
        ["clone", "configure"],
    ),
    (
        "an inventory GPU the VM should not have is removed (any spelling)",
        DESIRED,
        actual({**CONVERGED, "hostpci1": "0000:02:00.0,pcie=1"}, info=vm("stopped")),
        PlanOptions(),
        ["configure", "start", "verify"],
    ),
    (
        "a hand-added device that is no inventory GPU stays",
        DESIRED,
        actual({**CONVERGED, "hostpci1": "0000:05:00"}, info=vm()),
        PlanOptions(),
        [],
    ),
]


@pytest.mark.parametrize(
    ("desired", "have", "options", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_plan_is_these_actions_in_this_order(desired, have, options, expected):
    assert kinds(plan_vm(desired, have, GPUS, options)) == expected


def test_a_held_gpu_is_a_conflict_without_take_gpu():
    held = ConflictError("GPU big is held by VM 'other'")
    have = actual(CONVERGED, info=vm("stopped"), gpus={"big": GpuFacts(held=held)})
    with pytest.raises(ConflictError) as caught:
        plan_vm(with_gpu(DESIRED, "big", "mapping=big,pcie=1"), have, GPUS)
    assert caught.value is held


def test_actions_carry_their_parameters():
    desired = replace(with_gpu(DESIRED, "big", "mapping=big,pcie=1"), disk_gb=64)
    have = actual(CONVERGED, info=vm("stopped"), gpus={"big": GpuFacts(card="card")})
    actions = {a.kind: a for a in plan_vm(desired, have, GPUS).plan.actions}
    assert actions["map-gpu"].gpu == "big"
    assert actions["configure"].gpus == ("big",)
    assert [c.key for c in actions["configure"].changes] == ["hostpci0"]
    assert (actions["resize"].disk, actions["resize"].size) == ("scsi0", "64G")
    assert actions["start"].timeout == 4 * 30 + 5  # qemu-server's: x4 with a GPU, 5 s a NIC


def test_the_start_timeout_is_raised_for_the_config_being_started():
    big = replace(DESIRED, config={**BASE, "memory": str(64 * 1024)})
    state = plan_vm(big, actual(CONVERGED, info=vm("stopped")), GPUS)
    assert state.desired.start_timeout == 64 + 5  # a GiB a second above 30 GiB, 5 s a NIC
    assert state.started_config["memory"] == str(64 * 1024)


def test_a_current_description_is_not_rewritten():
    have = actual({**CONVERGED, "description": "old"}, info=vm(), keep_description=True)
    assert kinds(plan_vm(DESIRED, have, GPUS)) == []
    have = replace(have, keep_description=False)
    assert [c.key for c in plan_vm(DESIRED, have, GPUS).changes] == ["description"]


def test_notes_say_what_waits():
    have = actual(CONVERGED, info=vm(), user_data_pending=True, reprovision=True, generation=3)
    notes = plan_vm(DESIRED, have, GPUS, PlanOptions(deferred=("big",))).plan.notes
    assert notes[0].startswith("user-data changed")
    assert notes[1].startswith("re-provision: generation 3")
    assert "aihost gpu swap big --to box" in notes[2]


def test_the_printed_plan_lists_the_actions_in_the_executed_order():
    desired = replace(with_gpu(DESIRED, "big", "mapping=big,pcie=1"), disk_gb=64)
    have = actual(CONVERGED, info=vm("stopped"), gpus={"big": GpuFacts(held=ConflictError("x"))})
    text = plan_vm(desired, have, GPUS, PlanOptions(take_gpu=True)).plan.to_text()
    assert text.index("grow scsi0") < text.index("take GPU big")


def _restart(state) -> list[str]:
    return [a.summary for a in state.plan.actions if a.kind in ("restart", "start")]


def test_a_running_vm_restarts_for_managed_keys_still_pending():
    # GET .../config shows pending values applied, so the config is converged; the VM
    # still runs the old memory and without the GPU until it restarts
    gpu = with_gpu(DESIRED, "big", "mapping=big,pcie=1")
    have = {**CONVERGED, "hostpci0": "mapping=big,pcie=1"}
    state = plan_vm(gpu, actual(have, info=vm(), pending=("hostpci0", "memory")), GPUS)
    assert kinds(state) == ["restart", "verify"]
    assert _restart(state) == ["restart to apply pending: hostpci0, memory"]


def test_pending_keys_and_changes_are_named_once_each():
    have = {**CONVERGED, "cores": "2"}
    state = plan_vm(DESIRED, actual(have, info=vm(), pending=("cores", "memory")), GPUS)
    assert _restart(state) == ["restart to apply: cores; pending: memory"]


def test_a_pending_key_aihost_does_not_manage_is_a_note_not_a_restart():
    state = plan_vm(DESIRED, actual(CONVERGED, info=vm(), pending=("vga",)), GPUS)
    assert kinds(state) == []
    assert state.plan.notes == [
        "pending in Proxmox, not managed by aihost: vga (applies at the VM's next restart)"
    ]


def test_a_cold_key_pending_restarts_even_when_aihost_does_not_set_it():
    state = plan_vm(DESIRED, actual(CONVERGED, info=vm(), pending=("machine",)), GPUS)
    assert _restart(state) == ["restart to apply pending: machine"]


def test_a_stopped_vm_is_started_whatever_is_pending():
    state = plan_vm(DESIRED, actual(CONVERGED, info=vm("stopped"), pending=("memory",)), GPUS)
    assert kinds(state) == ["start", "verify"]
    assert state.plan.notes == []


def test_turning_on_the_agent_of_a_running_vm_restarts_it_in_the_same_run():
    # qemu-server vmconfig_update_agent keeps the change pending: without the restart the
    # guest agent `vm up` then waits for is not there
    desired = replace(DESIRED, config={**DESIRED.config, "agent": "1"})
    state = plan_vm(desired, actual(CONVERGED, info=vm()), GPUS)
    assert kinds(state) == ["configure", "restart", "verify"]
    assert _restart(state) == ["restart to apply: agent"]
