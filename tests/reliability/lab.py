"""A simulator started in-process, the starting worlds trials restore, and the checks.

`Lab` starts one simulator (short, non-zero task durations), writes an inventory of three
VMs sharing GPU rtx4090 and prepares the starting worlds once; a trial restores one of
them by writing the saved world back under the store's lock (fast: no re-provisioning).
`check` reads the live world and returns every invariant that does not hold.
"""

from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from provision.gpu.record import parse_records
from provision.gpu.register import from_one_line
from provision.plan.desired import MANAGED_TAG
from provision.sim.server import SimServer

from .zygote import Zygote

REPO_ROOT = Path(__file__).resolve().parents[2]
GPU = "rtx4090"
CARD = "0000:01:00"
VMS = ("llm-box", "image-box", "box-c")
# Short but non-zero, so a kill or a second process lands in the middle of an operation.
TASKS = ("qmclone", "qmcreate", "qmstart", "qmshutdown", "qmstop", "qmdestroy", "qmconfig")


class Lab:
    """One simulator, one inventory, the saved starting worlds."""

    def __init__(self, root: Path | None = None, *, fork: bool = True) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="aihost-reliab-"))
        self.server = SimServer(
            self.root / "sim", None, durations={"pvestatd": 1e9}, validator=_validator()
        ).start()
        self.inventory = self.root / "inv.yaml"
        self._write_inventory()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "AIHOST_STATE_DIR": str(self.root / "state"),
        }
        self.env.pop("AIHOST_INVENTORY", None)
        self.worlds: dict[str, dict[str, Any]] = {}
        self._prepare()
        self.zygote = Zygote(REPO_ROOT, self.env) if fork else None

    def close(self) -> None:
        """Stop the fork server and the simulator."""
        if self.zygote is not None:
            self.zygote.close()
        self.server.stop()

    # ---- worlds ---------------------------------------------------------------------
    def save(self) -> dict[str, Any]:
        """A copy of the live world."""
        store = self.server.app.store
        with store.locked():
            return copy.deepcopy(store.load())

    def restore(self, name: str, rng: random.Random) -> None:
        """Back to a saved starting world, with random short task durations."""
        world = copy.deepcopy(self.worlds[name])
        world["duration_overrides"] = {t: round(rng.uniform(0.05, 0.2), 3) for t in TASKS}
        world["duration_overrides"]["pvestatd"] = 1e9
        world["faults"], world["fault_hits"], world["violations"] = [], {}, []
        store = self.server.app.store
        with store.locked():
            store.save(world)

    def _prepare(self) -> None:
        """empty: the fixture (no mapping, no VMs); mapped: the GPU's mapping, no VMs;
        held: llm-box running with the GPU, image-box and box-c running without it."""
        self.worlds["empty"] = self.save()
        self.cli("vm", "up", "image-box", "--no-wait", check=True)
        self.cli("vm", "destroy", "image-box", "--yes", check=True)
        self.worlds["mapped"] = self.save()
        for name in ("image-box", "box-c"):
            self.cli("vm", "up", name, "--no-wait", check=True)
            self.cli("gpu", "release", GPU, check=True)
        self.cli("vm", "up", "llm-box", "--no-wait", check=True)
        for vmid, vm in self.save()["vms"].items():
            if vm["config"].get("name") in ("image-box", "box-c") and vm["status"] != "running":
                self.api_start(int(vmid))
        self.worlds["held"] = self.save()

    def api_start(self, vmid: int) -> None:
        """Start a VM through the API (a GPU-less VM the user runs)."""
        import requests

        server = self.server
        reply = requests.post(
            f"{server.url}/api2/json/nodes/pve1/qemu/{vmid}/status/start",
            verify=str(server.cert_path),
            timeout=10,
            headers={"Authorization": f"PVEAPIToken={server.token_id}={server.token_secret}"},
        )
        reply.raise_for_status()

    # ---- running aihost -------------------------------------------------------------
    def argv(self, *args: str) -> list[str]:
        """`python -m provision -i INVENTORY ARGS`."""
        return [sys.executable, "-m", "provision", "-i", str(self.inventory), *args]

    def cli(self, *args: str, check: bool = False, timeout: float = 120) -> tuple[int, str]:
        """Run aihost as a subprocess to its end; (exit code, stderr)."""
        done = subprocess.run(
            self.argv(*args),
            cwd=REPO_ROOT,
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"setup `aihost {' '.join(args)}` exited {done.returncode}: "
                f"{done.stderr.strip()[-500:]}"
            )
        return done.returncode, done.stderr

    def spawn(self, *args: str) -> Any:
        """Start aihost ARGS as a new process (forked by the zygote, else `python -m
        provision`); a Popen or a zygote Child."""
        if self.zygote is not None:
            return self.zygote.spawn(["-i", str(self.inventory), *args])
        return subprocess.Popen(
            self.argv(*args),
            cwd=REPO_ROOT,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def control(self, method: str, what: str, payload: Any = None) -> Any:
        """The simulator's control API."""
        import requests

        reply = requests.request(
            method,
            f"{self.server.url}/_sim/{what}",
            json=payload,
            verify=str(self.server.cert_path),
            timeout=10,
        )
        reply.raise_for_status()
        return reply.json()["data"]

    def _write_inventory(self) -> None:
        server = self.server
        known = self.root / "known_hosts"
        known.write_text(server.known_hosts_line() + "\n")
        token = self.root / "token"
        token.write_text(server.token_secret + "\n")
        vm = {"gpu": GPU, "runtime": "none"}
        data = {
            "hosts": {
                "pve1": {
                    "api": server.url,
                    "token": {"id": server.token_id, "secret_file": str(token)},
                    "tls": {"fingerprint": server.fingerprint},
                    "ssh": {
                        "user": "root",
                        "host": "127.0.0.1",
                        "port": server.sftp_port,
                        "key": str(server.client_key_path),
                        "known_hosts": str(known),
                    },
                }
            },
            "gpus": {GPU: {"host": "pve1", "mapping": GPU, "vram_gb": 24}},
            "defaults": {
                "vm": {
                    "host": "pve1",
                    "template": "ubuntu-2404-cloud",
                    "cores": 4,
                    "memory_gb": 16,
                    "disk_gb": 40,
                }
            },
            "vms": {name: dict(vm) for name in VMS},
        }
        self.inventory.write_text(yaml.safe_dump(data, sort_keys=False))


def start_labs(count: int) -> list[Lab]:
    """count labs, prepared side by side."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: Lab(), range(count)))


def _validator() -> Any:
    """Proxmox's schema check of every request, when the shared schema is there."""
    shared = Path(os.environ.get("AIHOST_SHARED_DIR", REPO_ROOT.parent / "shared"))
    schema = shared / "pve" / "apidoc.json"
    if not schema.exists():
        return None
    from provision.sim.apischema import ApiSchema

    return ApiSchema.load(schema).validate


def names_gpu(config: dict[str, Any]) -> bool:
    """True when a VM config's hostpci entries pass the GPU through (mapping or raw)."""
    return any(
        k.startswith("hostpci") and (f"mapping={GPU}" in str(v) or CARD in str(v))
        for k, v in config.items()
    )


def check(world: dict[str, Any]) -> list[str]:
    """Every invariant the live world breaks (empty when all hold)."""
    found: list[str] = list(world.get("violations", []))
    vms = {
        vmid: vm
        for vmid, vm in world["vms"].items()
        if str(vm["config"].get("template", "")) != "1"
    }
    holders = sorted(v for v, vm in vms.items() if names_gpu(vm["config"]))
    if len(holders) > 1:
        found.append(f"GPU {GPU} is named by {len(holders)} VM configs: {', '.join(holders)}")
    running = [v for v in holders if vms[v]["status"] == "running"]
    if len(running) > 1:
        found.append(f"GPU {GPU} is in {len(running)} running VMs: {', '.join(running)}")
    names: dict[str, list[str]] = {}
    for vmid, vm in vms.items():
        config = vm["config"]
        names.setdefault(str(config.get("name")), []).append(vmid)
        if config.get("lock"):
            found.append(f"VM {vmid} ({config.get('name')}) is left locked ({config['lock']})")
        if MANAGED_TAG not in str(config.get("tags", "")).split(";"):
            found.append(f"VM {vmid} ({config.get('name')}) is not tagged {MANAGED_TAG}")
        elif not config.get("scsi0") or not config.get("ide2") and not config.get("cicustom"):
            found.append(f"VM {vmid} ({config.get('name')}) is half-made: no disk or cloud-init")
    found += [
        f"{len(ids)} VMs are named {name}: {', '.join(sorted(ids))}"
        for name, ids in names.items()
        if len(ids) > 1
    ]
    found += _lease(world, holders)
    return found


def _lease(world: dict[str, Any], holders: list[str]) -> list[str]:
    mapping = world["mappings"]["pci"].get(GPU)
    if mapping is None:
        return [f"VM {', '.join(holders)} names GPU {GPU} without its mapping"] if holders else []
    record = parse_records(from_one_line(str(mapping.get("description", "")))).get(GPU)
    if record is None:
        return [] if not holders else [f"GPU {GPU}: no lease record, held by {holders}"]
    found = []
    if record.busy:
        found.append(f"GPU {GPU}: lease left busy (op {record.op}, phase {record.phase})")
    expected = int(holders[0]) if len(holders) == 1 else None
    if len(holders) <= 1 and record.holder != expected:
        found.append(f"GPU {GPU}: lease holder {record.holder}, config names {expected}")
    return found
