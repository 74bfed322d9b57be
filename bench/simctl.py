"""One simulated Proxmox per benchmark run: a fresh state, set task durations, an inventory.

Every run gets its own state directory, so nothing one tool did is seen by the next
(the reset the benchmark needs between runs). The server runs in this process (its own
threads); the tools under test are separate processes talking HTTPS + SFTP to it.
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from provision.sim.tasks import DEFAULT_DURATIONS

# Realistic task durations in seconds (issue #8); the benchmark scales them by --scale.
REALISTIC = {"qmclone": 5.0, "qmstart": 3.0, "qmshutdown": 4.0}
# Task types that exist but are instant in the benchmark (so they are 0 at every scale).
INSTANT = ("qmconfig", "resize", "qmstop", "qmcreate", "qmdestroy", "qmtemplate", "boot")
TEMPLATE = "ubuntu-2404-cloud"
NODE = "pve1"
# Where the default fixture's cards sit (for `aihost gpu map NAME --pci ADDRESS`).
GPU_PCI = {"rtx4090": "0000:01:00", "rtx3060": "0000:02:00"}
GPUS = {
    "rtx4090": {"host": "pve1", "mapping": "rtx4090", "vram_gb": 24},
    "rtx3060": {"host": "pve1", "mapping": "rtx3060", "vram_gb": 12},
}


def durations_for(scale: float) -> dict[str, float]:
    """Task durations for a scale factor (0 gives instant tasks)."""
    durations = {kind: seconds * scale for kind, seconds in REALISTIC.items()}
    durations.update({kind: 0.0 for kind in INSTANT})
    # An agent call to a guest whose agent does not answer (yet) waits out qemu-server's
    # guest-ping timeout (3 s) before it fails: scaled like the tasks.
    durations["qga_ping_timeout"] = DEFAULT_DURATIONS["qga_ping_timeout"] * scale
    return durations


def guest_durations(scale: float, profile: str = "realistic") -> dict[str, float]:
    """Task durations for a scale factor plus the simulated guest's first boot of a named
    profile at the same scale (provision/sim/guest_timeline.py PROFILES; figures and
    sources in docs/guest-timing.md): for time-to-first-token runs."""
    from provision.sim.guest_timeline import profile as guest_profile

    return {**durations_for(scale), **guest_profile(profile, scale)}


class BenchSim:
    """A running simulator in a fresh state directory, and what clients need to reach it."""

    def __init__(
        self,
        durations: dict[str, float],
        *,
        root: Path | None = None,
        validate: bool = False,
        share: BenchSim | None = None,
        seed: Path | None = None,
        fixture: Path | None = None,
    ) -> None:
        from provision.sim.server import SimServer

        # paramiko logs every client hang-up of the SFTP endpoint; not a benchmark result.
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)

        self.root: Path
        self.state_dir: Path
        if share is not None:  # a second server over the same world (other durations)
            self.root = share.root / f"twin-{id(self)}"
            self.root.mkdir()
            self.state_dir = share.state_dir
        else:
            self.root = Path(tempfile.mkdtemp(prefix="aihost-bench-", dir=root))
            self.state_dir = self.root / "sim"
            if seed is not None:  # a copy of a prepared world (e.g. GPUs already mapped)
                shutil.copytree(seed, self.state_dir)
            else:
                self.state_dir.mkdir()
        self.durations = dict(durations)
        validator = _schema_validator() if validate else None
        self.server: Any = SimServer(
            self.state_dir, fixture, durations=self.durations, validator=validator
        ).start()
        self.known_hosts = self.root / "known_hosts"
        self.known_hosts.write_text(self.server.known_hosts_line() + "\n")
        self.token_file = self.root / "token"
        self.token_file.write_text(self.server.token_secret + "\n")
        self.token_file.chmod(0o600)

    def __enter__(self) -> BenchSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server (the state directory is left for the caller's temp cleanup)."""
        self.server.stop()

    @property
    def host(self) -> str:
        """The server's address."""
        return self.server.url.removeprefix("https://").rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        """The server's HTTPS port."""
        return int(self.server.url.rsplit(":", 1)[1])

    def log(self, since: int = 0) -> list[dict[str, Any]]:
        """The simulator's request log (entries after index since)."""
        return list(self.server.request_log())[since:]

    def mark(self) -> int:
        """The current length of the request log (to count what a run adds)."""
        return len(self.server.request_log())

    def violations(self) -> list[str]:
        """Schema and GPU-invariant violations the simulator saw."""
        return list(self.server.violations())

    def api(self) -> Any:
        """A proxmoxer client for the benchmark's own reads (not counted: call mark() after)."""
        from proxmoxer import ProxmoxAPI

        user, token = self.server.token_id.split("!")
        return ProxmoxAPI(
            self.host,
            port=self.port,
            user=user,
            token_name=token,
            token_value=self.server.token_secret,
            verify_ssl=str(self.server.cert_path),
        )

    def _live_vms(self) -> list[dict[str, Any]]:
        """Every VM as its node lists it (GET /nodes/{node}/qemu: live), with its node.

        /cluster/resources shows names and states as pvestatd last broadcast them, so it
        only says which nodes host VMs."""
        api = self.api()
        nodes = sorted({vm["node"] for vm in api.cluster.resources.get(type="vm")})
        return [{**vm, "node": node} for node in nodes for vm in api.nodes(node).qemu.get()]

    def vms(self) -> dict[str, dict[str, Any]]:
        """Non-template VMs by name (live)."""
        return {
            vm["name"]: vm for vm in self._live_vms() if not vm.get("template") and vm.get("name")
        }

    def template_vmid(self, name: str = TEMPLATE) -> int:
        """The vmid of the template the benchmark clones."""
        for vm in self._live_vms():
            if vm.get("template") and vm.get("name") == name:
                return int(vm["vmid"])
        raise RuntimeError(f"the simulator has no template named {name}")

    def vm_config(self, name: str) -> dict[str, Any]:
        """A VM's config plus its status under '_status'."""
        vm = self.vms().get(name)
        if vm is None:
            raise RuntimeError(f"no VM named {name} in the simulator")
        config = dict(self.api().nodes(vm["node"]).qemu(vm["vmid"]).config.get())
        config["_status"] = vm.get("status")
        config["_vmid"] = int(vm["vmid"])
        return config

    def snippets_dir(self, storage: str = "local") -> Path:
        """Where the simulator keeps a dir storage's snippets."""
        return self.state_dir / "storage" / storage / "snippets"

    def inventory(self, path: Path, vms: dict[str, Any]) -> Path:
        """Write an inventory that talks to this simulator over HTTPS + SFTP."""
        server = self.server
        entry = {
            "api": server.url,
            "token": {"id": server.token_id, "secret_file": str(self.token_file)},
            "tls": {"fingerprint": server.fingerprint},
            "ssh": {
                "user": "root",
                "host": "127.0.0.1",
                "port": server.sftp_port,
                "key": str(server.client_key_path),
                "known_hosts": str(self.known_hosts),
            },
        }
        data = {
            "hosts": {"pve1": entry},
            "gpus": GPUS,
            "defaults": {
                "vm": {
                    "host": "pve1",
                    "template": TEMPLATE,
                    "cores": 4,
                    "memory_gb": 16,
                    "disk_gb": 40,
                }
            },
            "vms": vms,
        }
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def peer_auth(self) -> dict[str, Any]:
        """What a peer tool needs to log in with the simulator's API token."""
        user, token = self.server.token_id.split("!")
        return {
            "host": self.host,
            "port": self.port,
            "user": user,
            "token_name": token,
            "token_value": self.server.token_secret,
            "ca_file": str(self.server.cert_path),
            "node": NODE,
        }


@functools.cache
def _schema_validator() -> Any:
    """Proxmox's schema check for each request, when ../shared/pve/apidoc.json is there."""
    schema = Path(__file__).resolve().parent.parent.parent / "shared" / "pve" / "apidoc.json"
    if not schema.exists():
        return None
    from provision.sim.apischema import ApiSchema

    return ApiSchema.load(schema).validate
