"""/cluster/resources lags behind for VMs; /nodes/{node}/qemu and status/current are live.

pve-manager PVE/API2/Cluster.pm `resources` + PVE/API2Tools.pm `extract_vm_stats`: name,
status, template, memory... come from pvestatd's RRD broadcast (every 10 s); only the
vmid list, lock and tags are live. qemu-server PVE/API2/Qemu.pm `vmlist` ->
PVE::QemuServer::vmstatus reads configs and pid files (live).
"""

from __future__ import annotations

import requests
import yaml

from provision.sim.fixture import DEFAULT_FIXTURE

FIXTURES = DEFAULT_FIXTURE.parent


def _resource(api, vmid: int) -> dict:
    return next(r for r in api.cluster.resources.get(type="vm") if r["vmid"] == vmid)


def _listed(api, vmid: int, node: str = "pve1") -> dict:
    return next(r for r in api.nodes(node).qemu.get() if r["vmid"] == vmid)


def _clone(api, clock, newid: int, name: str) -> None:
    api.nodes("pve1").qemu(9000).clone.post(newid=newid, name=name, full=1)
    clock.advance(2.5)  # qmclone takes 2 s by default


def test_a_new_vm_has_no_name_and_status_unknown_until_the_next_broadcast(clocked):
    sim, clock = clocked
    api = sim.api()
    clock.advance(1)
    _clone(api, clock, 100, "fresh")  # done at +3.5 s; the next broadcast is at +10 s
    entry = _resource(api, 100)
    assert entry == {
        "id": "qemu/100",
        "vmid": 100,
        "node": "pve1",
        "type": "qemu",
        "status": "unknown",
    }
    live = _listed(api, 100)
    assert (live["name"], live["status"]) == ("fresh", "stopped")
    clock.advance(6.5)  # +10 s: pvestatd's cycle
    entry = _resource(api, 100)
    assert (entry["name"], entry["status"], entry["template"]) == ("fresh", "stopped", 0)
    assert entry["maxmem"] == 2048 * 1024**2 and entry["maxdisk"] == 3584 * 1024**2


def test_rename_and_start_lag_while_lock_and_tags_are_live(clocked):
    sim, clock = clocked
    api = sim.api()
    _clone(api, clock, 100, "fresh")
    clock.advance(10)
    assert _resource(api, 100)["name"] == "fresh"
    api.nodes("pve1").qemu(100).config.put(name="renamed", tags="aihost")
    api.nodes("pve1").qemu(100).status.start.post()
    clock.advance(2)
    entry = _resource(api, 100)
    assert (entry["name"], entry["status"], entry["tags"]) == ("fresh", "stopped", "aihost")
    live = _listed(api, 100)
    assert (live["name"], live["status"], live["tags"]) == ("renamed", "running", "aihost")
    assert api.nodes("pve1").qemu(100).status.current.get()["status"] == "running"
    api.nodes("pve1").qemu(9000).clone.post(newid=101, name="busy", full=1)
    assert _resource(api, 101)["lock"] == "clone"  # lock: live from the config
    clock.advance(8)
    entry = _resource(api, 100)
    assert (entry["name"], entry["status"]) == ("renamed", "running")
    assert entry["uptime"] > 0 and "lock" not in _resource(api, 101)


def test_node_qemu_list_has_the_fields_of_vmstatus(clocked):
    sim, clock = clocked
    api = sim.api()
    api.nodes("pve1").qemu.post(vmid=120, memory=1024, cores=2, sockets=2)
    clock.advance(1)
    _clone(api, clock, 100, "fresh")
    api.nodes("pve1").qemu(100).status.start.post()
    clock.advance(3)  # qmstart takes 1.5 s
    rows = {r["vmid"]: r for r in api.nodes("pve1").qemu.get()}
    assert rows[120]["name"] == "VM 120"  # `$conf->{name} || "VM $vmid"`
    assert (rows[120]["maxmem"], rows[120]["cpus"], rows[120]["status"]) == (
        1024 * 1024**2,
        4,
        "stopped",
    )
    assert "template" not in rows[120] and "pid" not in rows[120]
    assert rows[9000]["template"] == 1 and rows[9000]["maxdisk"] == 3584 * 1024**2
    assert rows[9000]["serial"] == 1
    running = rows[100]
    assert running["status"] == "running" and running["pid"] > 0 and running["uptime"] >= 1
    assert not {"id", "type", "node", "qmpstatus"} & set(running)  # not in vmstatus (non-full)
    full = {r["vmid"]: r for r in api.nodes("pve1").qemu.get(full=1)}
    assert (full[100]["qmpstatus"], full[120]["qmpstatus"]) == ("running", "stopped")


def test_a_reused_vmid_shows_the_old_name_until_the_next_broadcast(clocked):
    sim, clock = clocked
    api = sim.api()
    _clone(api, clock, 100, "first")
    clock.advance(10)
    assert _resource(api, 100)["name"] == "first"
    api.nodes("pve1").qemu(100).delete()
    clock.advance(1)
    _clone(api, clock, 100, "second")  # pmxcfs keeps the line per vmid
    assert _resource(api, 100)["name"] == "first"
    assert _listed(api, 100)["name"] == "second"


def test_an_offline_node_stops_reporting_and_its_lines_expire_after_five_minutes(make_sim):
    now = [1_800_000_000.0]
    sim = make_sim(FIXTURES / "two-node.yaml", durations=None, clock=lambda: now[0])
    api = sim.api()
    assert _resource(api, 9001)["status"] == "stopped"  # pve2's first cycle
    posted = requests.post(
        f"{sim.server.url}/_sim/faults",
        verify=str(sim.server.cert_path),
        json={"kind": "node_offline", "node": "pve2"},
        timeout=10,
    )
    assert posted.status_code == 200
    now[0] += 290
    stale = _resource(api, 9001)  # status.c rrd_entry_is_old: kept for 5 minutes
    assert (stale["status"], stale["name"]) == ("stopped", "debian-12-cloud")
    now[0] += 20
    assert _resource(api, 9001) == {
        "id": "qemu/9001",
        "vmid": 9001,
        "node": "pve2",
        "type": "qemu",
        "status": "unknown",
    }
    assert _resource(api, 9000)["name"] == "ubuntu-2404-cloud"  # pve1 kept reporting


def test_broadcast_interval_from_control_endpoint_fixture_and_constructor(make_sim, tmp_path):
    fixture = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    # pvestatd effectively never after the first cycle; the clone done by the next request
    fixture["durations"] = {"pvestatd": 1e9, "qmclone": 0}
    path = tmp_path / "never.yaml"
    path.write_text(yaml.safe_dump(fixture))
    sim = make_sim(path, durations=None)
    api = sim.api()
    assert _resource(api, 9000)["name"] == "ubuntu-2404-cloud"  # the first cycle
    api.nodes("pve1").qemu(9000).clone.post(newid=100, name="x", full=1)
    url = f"{sim.server.url}/_sim/durations"
    got = requests.get(url, verify=str(sim.server.cert_path), timeout=10).json()["data"]
    assert got["pvestatd"] == 1e9
    assert "name" not in _resource(api, 100)
    posted = requests.post(url, json={"pvestatd": 0}, verify=str(sim.server.cert_path), timeout=10)
    assert posted.json()["data"]["pvestatd"] == 0  # 0: a cycle at every request
    assert _resource(api, 100)["name"] == "x"
    ctor = make_sim(durations={"pvestatd": 1e9})
    assert ctor.server.app.durations(ctor.server.app.store.load())["pvestatd"] == 1e9
