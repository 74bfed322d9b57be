"""The proxmoxer peer: a minimal hand-written script, run as its own process.

    python px_script.py up SPEC.json     # clone, config (GPU mapping included), start
    python px_script.py swap SPEC.json   # shut down holder, move hostpciN, start target

It does what a careful person writes by hand: one client, a 0.1 s task poll, no checks
beyond the task's exit status. SPEC holds the API address, token, CA file and the values.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from proxmoxer import ProxmoxAPI


def connect(spec: dict[str, Any]) -> Any:
    """Log in with the API token, verifying the server against the CA file."""
    return ProxmoxAPI(
        spec["host"],
        port=spec["port"],
        user=spec["user"],
        token_name=spec["token_name"],
        token_value=spec["token_value"],
        verify_ssl=spec["ca_file"],
    )


def wait(api: Any, node: str, upid: str, poll: float) -> None:
    """Poll a task until it stops; exit non-zero if it failed."""
    while True:
        status = api.nodes(node).tasks(upid).status.get()
        if status["status"] == "stopped":
            if status.get("exitstatus") != "OK":
                sys.exit(f"task {upid} failed: {status.get('exitstatus')}")
            return
        time.sleep(poll)


def up(api: Any, spec: dict[str, Any]) -> None:
    """Clone the template, write the config, grow the disk if asked, start."""
    node, vmid, poll = spec["node"], spec["vmid"], spec.get("poll", 0.1)
    upid = (
        api.nodes(node)
        .qemu(spec["template_vmid"])
        .clone.post(newid=vmid, name=spec["name"], full=1, storage=spec["storage"])
    )
    wait(api, node, upid, poll)
    vm = api.nodes(node).qemu(vmid)
    params = dict(spec["config"])
    if spec.get("deletes"):
        params["delete"] = ",".join(spec["deletes"])
    vm.config.put(**params)
    if spec.get("resize"):
        upid = vm.resize.put(disk=spec["resize"]["disk"], size=spec["resize"]["size"])
        if upid:
            wait(api, node, upid, poll)
    wait(api, node, vm.status.start.post(), poll)


def swap(api: Any, spec: dict[str, Any]) -> None:
    """Shut the holder down, move the GPU's hostpci entry, start the target."""
    node, poll, key = spec["node"], spec.get("poll", 0.1), spec["key"]
    holder, target = api.nodes(node).qemu(spec["holder"]), api.nodes(node).qemu(spec["target"])
    wait(api, node, holder.status.shutdown.post(timeout=spec.get("timeout", 300)), poll)
    holder.config.put(delete=key)
    target.config.put(**{key: spec["value"]})
    wait(api, node, target.status.start.post(), poll)


def main(argv: list[str]) -> None:
    """Entry point: ACTION SPEC.json."""
    action, spec_path = argv
    with open(spec_path) as handle:
        spec = json.load(handle)
    api = connect(spec)
    {"up": up, "swap": swap}[action](api, spec)


if __name__ == "__main__":
    main(sys.argv[1:])
