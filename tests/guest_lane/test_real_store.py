"""The real guest lane, model store: the node's shared model store (a Proxmox directory
mapping passed as `virtiofs0: aihost-models`) in a real Debian 12 guest.

The VM's user-data is rendered by aihost's own renderer (as `vm up` renders it) for a GPU
VM of a host with `model_store:`, and boots with a real virtiofs share of a host
directory, QEMU's device and virtiofsd set up as qemu-server sets them up (lane.Virtiofsd).
The host directory is seeded with a model file owned by Ollama's fixed uid.

Neither NVIDIA's servers nor Ollama's downloads are reachable from this lane, and the
store is only for GPU VMs, so the image stands for a template baked with the driver: its
/etc/aihost/baked.json is the one `template bake` writes for such a recipe (bake_record),
put on a copy of the lane's disk (debugfs). The driver phase is then skipped, aihost-boot
mounts the store (its runtime phase's first step), and the runtime phase then fails for
its real reason: Ollama's download does not resolve.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from lane import BOOT_TIMEOUT, FIRST_BOOT_TIMEOUT, Virtiofsd

from provision.cloudinit.bake import bake_record, recipe_digest
from provision.cloudinit.context import MODELS_DIR, RUNTIME_IDS
from provision.cloudinit.render import render_meta_data, render_user_data
from provision.inventory.model import Inventory
from provision.sim.qemu_guest import QemuGuest

pytestmark = [pytest.mark.slow, pytest.mark.guest]
RECIPE, VM, IID, TAG = "lane-gpu", "lane", "aihost-lane-g1", "aihost-models"
UNIT = "var-lib-aihost-models.mount"
OLLAMA = RUNTIME_IDS["ollama"]
SEED = "blobs/sha256-seed"  # under the store's ollama/ (OLLAMA_MODELS)


def _inventory(store: Path) -> Inventory:
    recipe = {"from": "local:import/debian-12.raw", "host": "pve1", "distro": "debian-12"}
    vm = {"host": "pve1", "template": RECIPE, "distro": "debian-12", "gpu": "rtx4090"}
    return Inventory.model_validate(
        {
            "hosts": {"pve1": {"api": "sim", "model_store": {"path": str(store)}}},
            "gpus": {"rtx4090": {"host": "pve1", "mapping": "rtx4090", "vram_gb": 24}},
            "bake": {RECIPE: {**recipe, "runtime": "none"}},
            "vms": {VM: {**vm, "runtime": "ollama", "cores": 2, "memory_gb": 2, "disk_gb": 40}},
        }
    )


def _baked_image(image: Path, workdir: Path, record: dict[str, object]) -> Path:
    """A copy of the lane's image whose disk has the bake's /etc/aihost/baked.json."""
    out = workdir / "image"
    out.mkdir(parents=True)
    for name in ("vmlinuz", "initrd"):
        (out / name).symlink_to(image / name)
    disk = out / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(image / "disk.img"), str(disk)], check=True)
    local = workdir / "baked.json"
    local.write_text(json.dumps(record, sort_keys=True) + "\n")
    local.chmod(0o644)
    for request in ("mkdir /etc/aihost", f"write {local} /etc/aihost/baked.json"):
        debugfs = ["debugfs", "-w", "-R", request, str(disk)]
        subprocess.run(debugfs, check=True, capture_output=True, timeout=120)
    return out


def _seed(store: Path) -> bytes:
    """The store as a node keeps it: Ollama's directory and a model file, owned by its uid."""
    seed = store / "ollama" / SEED
    seed.parent.mkdir(parents=True)
    data = b"a model file the node already has\n"
    seed.write_bytes(data)
    for path in (store / "ollama", seed.parent, seed):
        subprocess.run(["chown", f"{OLLAMA}:{OLLAMA}", str(path)], check=True)
    return data


def _boot(vm: QemuGuest, fs: Virtiofsd) -> float:
    """Boot to cloud-init done; the seconds it took."""
    start = time.monotonic()
    fs.start()
    vm.start()
    vm.wait_agent(BOOT_TIMEOUT)
    vm.exec(["cloud-init", "status", "--wait"], timeout=FIRST_BOOT_TIMEOUT)
    return time.monotonic() - start


def test_the_model_store_is_mounted_for_the_runtime_over_a_real_virtiofs_share(
    image: Path, tmp_path: Path
) -> None:
    """aihost-boot mounts the share (tag = the mapping's id) on the runtime's model
    directory before the runtime phase; the node's files show with Ollama's fixed uid; a
    file written there by that uid is on the node with it; ollama.service requires the
    mount; no ordering cycle; no failed unit but cloud-final (the runtime phase's failure);
    the store's download lock, held by the node, holds the guest's fetch back until freed."""
    store = tmp_path / "store"
    data = _seed(store)
    inv = _inventory(store)
    record = bake_record(RECIPE, inv.bake[RECIPE], recipe_digest(inv, RECIPE))
    user_data = render_user_data(inv, VM, instance_id=IID).text
    assert f"What={TAG}" in user_data
    vm = QemuGuest(_baked_image(image, tmp_path, record), tmp_path / "vm", name="vm")
    fs = Virtiofsd(store, tmp_path / "vm-fs0.sock", tmp_path / "virtiofsd.log")
    vm.extra_args = fs.qemu_args(0, TAG)
    vm.write_cidata(user_data, render_meta_data(VM, IID))
    try:
        print(f"\nguest lane: model store VM to cloud-init done {_boot(vm, fs):.0f} s")
        state = json.loads(vm.read_file("/var/lib/aihost/state.json") or "{}")
        assert state["phases"]["driver"]["status"] == "skipped", state
        runtime = state["phases"]["runtime"]
        assert (runtime["status"], state["phase"]) == ("failed", "runtime"), state
        assert "curl" in runtime["error"] and "ollama.com" in runtime["error"], runtime
        _check_mount(vm, data)
        _check_guest_write(vm, store)
        _check_units(vm)
        _check_store_lock(vm, store)
    finally:
        vm.stop()
        fs.stop()
        (tmp_path / "image" / "disk.img").unlink(missing_ok=True)  # the disk's 1.2 GB copy


def _check_mount(vm: QemuGuest, data: bytes) -> None:
    mount = vm.exec(["findmnt", "-n", "-o", "FSTYPE,SOURCE", MODELS_DIR]).out.split()
    assert mount == ["virtiofs", TAG], mount
    seed = f"{MODELS_DIR}/ollama/{SEED}"
    owner = vm.exec(["stat", "-c", "%u:%g", seed]).out.strip()
    assert owner == f"{OLLAMA}:{OLLAMA}", owner
    assert vm.read_file(seed) == data.decode()


def _check_guest_write(vm: QemuGuest, store: Path) -> None:
    """Ollama's uid writes into its directory of the store; the node has the file, its."""
    ids = ["setpriv", f"--reuid={OLLAMA}", f"--regid={OLLAMA}", "--clear-groups"]
    target = f"{MODELS_DIR}/ollama/blobs/written-by-the-guest"
    run = vm.exec([*ids, "sh", "-c", f"echo from the guest > {target} && sync"])
    assert run.exitcode == 0, run.err
    written = store / "ollama" / "blobs" / "written-by-the-guest"
    assert written.read_text() == "from the guest\n"
    assert (written.stat().st_uid, written.stat().st_gid) == (OLLAMA, OLLAMA)


def _check_store_lock(vm: QemuGuest, store: Path) -> None:
    """aihost-state's store-lock over the real share: a lock another VM made on the node
    (here: the node itself, in the shared directory) holds the guest's fetch back, and
    the guest's state file names the holder; once it is released the guest takes the
    lock, fetches and leaves no lock behind."""
    lock = store / ".aihost-download.lock"
    lock.mkdir()
    (lock / "holder").write_text("other-vm (instance aihost-other-g1, pid 7)\n")
    fetched = f"{MODELS_DIR}/fetched-by-the-guest"
    command = f"echo fetched > {fetched}"
    run = vm.exec(
        [
            "systemd-run",
            "--unit=aihost-lock-check",
            "--",
            "/usr/local/sbin/aihost-state",
            "store-lock",
            MODELS_DIR,
            "--",
            "sh",
            "-c",
            command,
        ]
    )
    assert run.exitcode == 0, run.err
    deadline = time.monotonic() + 60
    state: dict = {}
    while time.monotonic() < deadline and "store_wait" not in state:
        time.sleep(1)
        state = json.loads(vm.read_file("/var/lib/aihost/state.json") or "{}")
    assert state.get("store_wait") == {"holder": "other-vm (instance aihost-other-g1, pid 7)"}
    assert not (store / "fetched-by-the-guest").exists()  # held back while the lock is held
    (lock / "holder").unlink()
    lock.rmdir()  # the other VM is done
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (store / "fetched-by-the-guest").exists():
        time.sleep(1)
    assert (store / "fetched-by-the-guest").read_text() == "fetched\n"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and lock.exists():
        time.sleep(0.5)
    assert not lock.exists()  # released by the guest
    assert "store_wait" not in json.loads(vm.read_file("/var/lib/aihost/state.json") or "{}")


def _check_units(vm: QemuGuest) -> None:
    """The mount unit is active and enabled (it mounts on later boots) and was mounted before
    the runtime's install ran; ollama.service is ordered after it and requires it
    (RequiresMountsFor); no ordering cycle (in the boot's journal, nor for systemd-analyze
    verify of the default target with both units); the one failed unit is cloud-final:
    the runtime phase failed (no Ollama download), so scripts-per-boot did, as cloud-init
    reports it."""
    show = vm.exec(["systemctl", "show", "-p", "ActiveState,UnitFileState", UNIT]).out
    assert show.split() == ["ActiveState=active", "UnitFileState=enabled"], show
    show = vm.exec(["systemctl", "show", "-p", "Requires,After", "ollama.service"]).out
    deps = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    assert UNIT in deps["Requires"].split() and UNIT in deps["After"].split(), deps
    journal = vm.exec(["journalctl", "-b", "--no-pager", "-o", "cat"]).out
    assert "ordering cycle" not in journal and "deleted to break" not in journal
    # mounted first, then the runtime's install (cloud-final's output is in the journal)
    mounted = journal.find(f"Mounted {UNIT}")
    install = re.search(r"curl: \(\d+\) [^\n]*ollama\.com", journal)  # refused, wherever it runs
    assert install and 0 <= mounted < install.start(), journal[-3000:]
    verify = vm.exec(["systemd-analyze", "verify", "default.target", "ollama.service", UNIT])
    assert "cycle" not in verify.out + verify.err, verify.out + verify.err
    failed = vm.exec(["systemctl", "--failed", "--no-legend", "--plain"]).out.split("\n")
    assert [line.split()[0] for line in failed if line.strip()] == ["cloud-final.service"]
