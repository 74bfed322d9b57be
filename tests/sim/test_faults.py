"""Faults on demand through the control API and from the fixture YAML."""

from __future__ import annotations

import pytest
import requests
import yaml
from proxmoxer.core import ResourceException

from provision.sim.fixture import DEFAULT_FIXTURE


def _control(sim, method: str, path: str, **kw):
    resp = requests.request(
        method, f"{sim.server.url}/_sim/{path}", verify=str(sim.server.cert_path), **kw
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def test_nth_matching_request_fails_with_500(sim):
    _control(
        sim,
        "POST",
        "faults",
        json={
            "kind": "http500",
            "method": "GET",
            "path": "/cluster/resources",
            "nth": 2,
            "message": "got timeout",
        },
    )
    api = sim.api()
    api.cluster.resources.get(type="vm")
    with pytest.raises(ResourceException) as caught:
        api.cluster.resources.get(type="vm")
    assert caught.value.status_code == 500 and caught.value.content == "got timeout"
    api.cluster.resources.get(type="vm")  # count defaults to 1
    log = _control(sim, "GET", "requests")
    assert [e["status"] for e in log] == [200, 500, 200]


def test_dropped_connection_and_hang(sim):
    _control(
        sim,
        "POST",
        "faults",
        json=[
            {"kind": "drop", "path": "/version"},
            {"kind": "hang", "path": "/cluster/nextid", "seconds": 0.5},
        ],
    )
    with pytest.raises(requests.ConnectionError):
        requests.get(
            f"{sim.server.url}/api2/json/version",
            verify=str(sim.server.cert_path),
            headers={
                "Authorization": f"PVEAPIToken={sim.server.token_id}={sim.server.token_secret}"
            },
        )
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(
            f"{sim.server.url}/api2/json/cluster/nextid",
            verify=str(sim.server.cert_path),
            timeout=0.2,
        )
    assert sim.api().version.get()["release"] == "9.1"
    _control(sim, "DELETE", "faults")
    assert _control(sim, "GET", "faults") == []


def test_task_error_and_latency(clocked):
    sim, clock = clocked
    _control(
        sim,
        "POST",
        "faults",
        json={
            "faults": [
                {"kind": "task_error", "task": "qmclone", "message": "clone failed: out of space"},
                {"kind": "latency", "task": "qmclone", "seconds": 100},
            ]
        },
    )
    api = sim.api()
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=100, name="x", full=1)
    clock.advance(50)
    assert api.nodes("pve1").tasks(upid).status.get()["status"] == "running"
    clock.advance(60)
    status = api.nodes("pve1").tasks(upid).status.get()
    assert status["exitstatus"] == "clone failed: out of space"
    assert 100 not in [vm["vmid"] for vm in api.cluster.resources.get(type="vm")]


def test_node_offline(two_node):
    sim = two_node
    _control(sim, "POST", "faults", json={"kind": "node_offline", "node": "pve2"})
    api = sim.api()
    nodes = {n["node"]: n["status"] for n in api.nodes.get()}
    assert nodes == {"pve1": "online", "pve2": "offline", "pve3": "online"}
    with pytest.raises(ResourceException) as caught:
        api.nodes("pve2").qemu.get()
    assert caught.value.status_code == 595
    vm = next(v for v in api.cluster.resources.get(type="vm") if v["vmid"] == 9001)
    assert vm["status"] == "unknown"


def test_faults_from_the_fixture_yaml(make_sim, tmp_path):
    fixture = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    fixture["faults"] = [
        {
            "kind": "task_error",
            "task": "qmstart",
            "nth": 1,
            "message": "start failed: QEMU exited with code 1",
        }
    ]
    path = tmp_path / "faulty.yaml"
    path.write_text(yaml.safe_dump(fixture))
    sim = make_sim(path)
    api = sim.api()
    sim.wait(api, api.nodes("pve1").qemu(9000).clone.post(newid=100, name="f", full=1))
    first = sim.wait(api, api.nodes("pve1").qemu(100).status.start.post())
    assert first["exitstatus"] == "start failed: QEMU exited with code 1"
    assert sim.wait(api, api.nodes("pve1").qemu(100).status.start.post())["exitstatus"] == "OK"


def test_reset_and_durations(sim):
    api = sim.api()
    sim.wait(api, api.nodes("pve1").qemu(9000).clone.post(newid=100, name="gone", full=1))
    _control(sim, "POST", "reset")
    assert [vm["vmid"] for vm in api.cluster.resources.get(type="vm")] == [9000, 9001]
    durations = _control(sim, "POST", "durations", json={"qmstart": 2.5})
    assert durations["qmstart"] == 2.5 and durations["qmclone"] == 0


def test_latency_hits_the_nth_task_only(clocked):
    sim, clock = clocked
    _control(sim, "POST", "faults", json={"kind": "latency", "task": "qmclone", "seconds": 100})
    api = sim.api()
    slow = api.nodes("pve1").qemu(9000).clone.post(newid=100, name="x", full=1)
    fast = api.nodes("pve1").qemu(9000).clone.post(newid=101, name="y", full=1)
    clock.advance(50)
    assert api.nodes("pve1").tasks(fast).status.get()["exitstatus"] == "OK"
    assert api.nodes("pve1").tasks(slow).status.get()["status"] == "running"
