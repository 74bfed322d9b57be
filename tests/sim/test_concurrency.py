"""Two client processes, each with its own SimServer on the same state dir, writing many
configs at once: every write lands, the state file stays valid JSON."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
from pathlib import Path

from aihost_testing import token_client
from proxmoxer.core import ResourceException

from provision.sim.server import SimServer

WRITES = 25


def _writer(state_dir: str, vmid: int, tag: str, queue) -> None:
    server = SimServer(Path(state_dir), sftp_port=None, durations={}, auth_delay=0).start()
    try:
        api = token_client(server)
        for i in range(WRITES):
            api.nodes("pve1").qemu(vmid).config.put(description=f"{tag}-{i}")
            api.nodes("pve1").qemu(9000).config.put(**{"tags": f"{tag}{i}"})
            digest = api.nodes("pve1").config.get()["digest"]
            with contextlib.suppress(ResourceException):  # losing a compare-and-set race
                api.nodes("pve1").config.put(description=f"{tag}-{i}", digest=digest)
        queue.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(repr(exc))
    finally:
        server.stop()


def test_two_processes_share_one_state_dir(make_sim):
    sim = make_sim()
    api = sim.api()
    for vmid in (100, 101):
        sim.wait(api, api.nodes("pve1").qemu(9001).clone.post(newid=vmid, name=f"c{vmid}", full=1))  # noqa: E501
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(str(sim.state_dir), vmid, tag, queue))
        for vmid, tag in ((100, "a"), (101, "b"))
    ]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert results == ["ok", "ok"]
    json.loads((sim.state_dir / "state.json").read_text())
    assert api.nodes("pve1").qemu(100).config.get()["description"] == f"a-{WRITES - 1}"
    assert api.nodes("pve1").qemu(101).config.get()["description"] == f"b-{WRITES - 1}"
    assert api.nodes("pve1").qemu(9000).config.get()["tags"] in (f"a{WRITES - 1}", f"b{WRITES - 1}")  # noqa: E501
    assert api.nodes("pve1").config.get()["description"].split("-")[0] in ("a", "b")
