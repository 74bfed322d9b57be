"""Simulator answers checked against Proxmox's source, one test per divergence the audit
of docs/sim-conformance.md found (each names the function it follows)."""

from __future__ import annotations

from typing import Any

import pytest
from proxmoxer import ResourceException

NODE = "pve1"


def _refusal(call: Any) -> ResourceException:
    with pytest.raises(ResourceException) as info:
        call()
    return info.value


def test_task_status_of_unknown_or_malformed_upid_is_a_parameter_error(sim: Any) -> None:
    """pve-manager PVE/API2/Tasks.pm read_task_status: raise_param_exc "unable to parse
    worker upid" / "no such task" (HTTP 400), not a 500."""
    sim.allow_violations = True
    tasks = sim.api().nodes(NODE).tasks
    bad = _refusal(lambda: tasks("UPID:nonsense").status.get())
    assert bad.status_code == 400 and "unable to parse worker upid" in str(bad.errors)
    unknown = "UPID:pve1:0000FFFF:00001000:6A000000:qmstart:100:root@pam:"
    gone = _refusal(lambda: tasks(unknown).status.get())
    assert gone.status_code == 400 and "no such task" in str(gone.errors)


def test_task_log_of_unknown_upid_is_one_line_and_empty_log_says_no_content(
    clocked: Any,
) -> None:
    """pve-manager Tasks.pm read_task_log + pve-common PVE/Tools.pm dump_logfile: a
    missing log answers 200 with "unable to open file - …"; an empty one "no content"."""
    sim, clock = clocked
    api = sim.api()
    unknown = "UPID:pve1:0000FFFF:00001000:6A000000:qmstart:100:root@pam:"
    lines = api.nodes(NODE).tasks(unknown).log.get()
    assert lines == [{"n": 1, "t": "unable to open file - No such file or directory"}]
    upid = api.nodes(NODE).qemu(9000).clone.post(newid=120, name="c", full=1)
    assert api.nodes(NODE).tasks(upid).log.get() == [{"n": 1, "t": "no content"}]
    clock.advance(60)
    assert api.nodes(NODE).tasks(upid).log.get()[-1]["t"] == "TASK OK"


def _upload(sim: Any, content: str, name: str, data: bytes = b"x" * 64) -> Any:
    import requests

    return requests.post(
        f"https://127.0.0.1:{sim.server.port}/api2/json/nodes/{NODE}/storage/local/upload",
        data={"content": content},
        files={"filename": (name, data)},
        headers=_token_header(sim),
        verify=str(sim.server.cert_path),
        timeout=10,
    )


@pytest.mark.parametrize(
    ("content", "name", "problem"),
    [
        ("iso", "seed.txt", "wrong file extension"),
        ("vztmpl", "ct.tgz", "wrong file extension"),
        ("import", "noble.img", "invalid filename or wrong extension"),
        ("import", "disk.ovf", "invalid filename or wrong extension"),
    ],
)
def test_upload_extension_rules_are_parameter_errors(
    sim: Any, content: str, name: str, problem: str
) -> None:
    """pve-storage PVE/API2/Storage/Status.pm upload: ISO_EXT_RE_0, VZTMPL_EXT_RE_1 and
    UPLOAD_IMPORT_EXT_RE_1 (no .img, no .ovf, no .tgz) refused with raise_param_exc (400)."""
    answer = _upload(sim, content, name)
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"] == {"filename": problem}


def test_upload_normalises_the_file_name_and_logs_the_copy(sim: Any) -> None:
    """pve-storage PVE/Storage.pm normalize_content_filename: base name only, characters
    outside [a-zA-Z0-9_.-] become '_' ('+' too); the imgcopy worker logs the cp command."""
    answer = _upload(sim, "iso", "isos/my seed+1.ISO")
    assert answer.status_code == 200, answer.text
    upid = answer.json()["data"]
    api = sim.api()
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    listed = api.nodes(NODE).storage("local").content.get(content="iso")
    assert [(v["volid"], v["format"]) for v in listed] == [("local:iso/my_seed_1.ISO", "iso")]
    log = [line["t"] for line in api.nodes(NODE).tasks(upid).log.get()]
    assert any(t.startswith("command: cp -- /var/tmp/pveupload-") for t in log)


def test_content_listing_formats_follow_get_subdir_files(sim: Any) -> None:
    """pve-storage PVE/Storage/Plugin.pm $get_subdir_files: snippets have format
    'snippet', ISOs 'iso', vztmpl 'tzst'/'tgz'/'tar'; files with other extensions in the
    iso or import folders are not listed."""
    from provision.sim.fixture import storage_root

    root = storage_root(sim.state_dir, "local")
    for rel in (
        "snippets/u.yaml",
        "template/iso/notes.txt",
        "template/cache/ct.tar.zst",
        "import/noble.qcow2",
        "import/readme.md",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"1")
    listed = {v["volid"]: v["format"] for v in sim.api().nodes(NODE).storage("local").content.get()}
    assert listed["local:snippets/u.yaml"] == "snippet"
    assert listed["local:vztmpl/ct.tar.zst"] == "tzst"
    assert listed["local:import/noble.qcow2"] == "qcow2"
    assert "local:iso/notes.txt" not in listed and "local:import/readme.md" not in listed


def _clone(sim: Any, api: Any, newid: int, **kw: Any) -> None:
    upid = api.nodes(NODE).qemu(9000).clone.post(newid=newid, name=f"vm{newid}", **kw)
    assert sim.wait(api, upid)["exitstatus"] == "OK"


def test_destroy_refusals_follow_destroy_vm(sim: Any) -> None:
    """qemu-server PVE/API2/Qemu.pm destroy_vm: skiplock from a token is a 400, protection
    says "can't remove VM N - protection mode enabled"; the lock check runs in the worker
    (PVE/QemuServer.pm destroy_vm), so a locked VM answers a UPID whose task fails."""
    sim.allow_violations = True
    api = sim.api()
    _clone(sim, api, 130, full=1)
    vm = api.nodes(NODE).qemu(130)
    skip = _refusal(lambda: vm.delete(skiplock=1))
    assert skip.status_code == 400 and "Only root may use this option." in str(skip.errors)
    vm.config.put(protection=1)
    assert _refusal(vm.delete).content == "can't remove VM 130 - protection mode enabled"
    vm.config.put(protection=0)
    with sim.server.app.store.transaction() as world:  # as a running backup leaves it
        world["vms"]["130"]["config"]["lock"] = "backup"
    status = sim.wait(api, vm.delete())
    assert status["exitstatus"] == "VM is locked (backup)"
    assert vm.config.get()["lock"] == "backup"


def test_destroy_frees_unused_and_unreferenced_disks_and_keeps_linked_bases(sim: Any) -> None:
    """qemu-server PVE/QemuServer.pm destroy_vm: owned volumes of the config, `unusedN`
    and pending are freed; with destroy-unreferenced-disks also every image of the VM; a
    template whose base volume a linked clone uses fails in the worker."""
    api = sim.api()
    _clone(sim, api, 131, full=1)
    vm = api.nodes(NODE).qemu(131)
    vm.config.put(scsi1="local-lvm:1")
    vm.config.put(delete="scsi1")  # becomes unused0
    assert "unused0" in vm.config.get()
    with sim.server.app.store.transaction() as world:  # an orphan, as a failed import leaves
        world["volumes"]["local-lvm"]["vm-131-disk-7"] = {"size": 1, "vmid": 131, "format": "raw"}
    assert sim.wait(api, vm.delete(**{"destroy-unreferenced-disks": 1}))["exitstatus"] == "OK"
    left = [c["volid"] for c in api.nodes(NODE).storage("local-lvm").content.get()]
    assert not [v for v in left if "vm-131-" in v]
    _clone(sim, api, 132, full=1)
    assert sim.wait(api, api.nodes(NODE).qemu(132).template.post())["exitstatus"] == "OK"
    _clone_from = api.nodes(NODE).qemu(132).clone.post(newid=133, name="linked")
    assert sim.wait(api, _clone_from)["exitstatus"] == "OK"
    status = sim.wait(api, api.nodes(NODE).qemu(132).delete())
    assert status["exitstatus"] == (
        "base volume 'local-lvm:base-132-disk-0' is still in use by linked cloned"
    )
    assert "lock" not in api.nodes(NODE).qemu(132).config.get()


def test_hardware_pci_leaves_out_bridges_and_honours_verbose(sim: Any) -> None:
    """pve-manager PVE/API2/Hardware/PCI.pm pci_scan: pci-class-blacklist defaults to
    "05;06;0b" (the host bridge 0x060000 is not listed); an empty value reads as unset
    (pve-http-server decode_urlencoded), so ";" is the blacklist that lists everything;
    verbose=0 gives ids only."""
    hw = sim.api().nodes(NODE).hardware.pci
    listed = hw.get()
    assert "0000:00:00.0" not in [d["id"] for d in listed]
    assert [d["id"] for d in listed] == sorted(d["id"] for d in listed)
    assert "0000:00:00.0" not in [d["id"] for d in hw.get(**{"pci-class-blacklist": ""})]
    everything = hw.get(**{"pci-class-blacklist": ";"})
    assert "0000:00:00.0" in [d["id"] for d in everything]
    terse = hw.get(verbose=0)
    assert all(set(d) <= {"id", "vendor", "device", "class", "iommugroup", "mdev"} for d in terse)


def test_node_notes_read_back_as_node_config_parses_them(sim: Any) -> None:
    """pve-manager PVE/NodeConfig.pm write_node_config + PVE::JSONSchema::parse_config:
    the description comes back with a newline after each line, trailing spaces and
    trailing empty lines gone; other characters (':', '%', '{') survive."""
    node = sim.api().nodes(NODE)
    node.config.put(description='aihost-lease gpu0: {"holder":101}  \nsecond 100%41\n\n')
    got = node.config.get()["description"]
    assert got == 'aihost-lease gpu0: {"holder":101}\nsecond 100%41\n'


def _raw(sim: Any, method: str, path: str, **kw: Any) -> Any:
    import requests

    return requests.request(
        method,
        f"{sim.server.url}/api2/json{path}",
        verify=str(sim.server.cert_path),
        timeout=10,
        **kw,
    )


def test_auth_handler_refusals_have_no_body_and_close_the_connection(sim: Any) -> None:
    """pve-manager PVE/HTTPServer.pm auth_handler dies "No ticket" / "Authentication
    failed!"; pve-http-server AnyEvent.pm answers a plain die with the reason phrase and no
    body, and closes the connection on every answer >= 400."""
    bad = _raw(sim, "GET", "/version", headers={"Authorization": "PVEAPIToken=x@pve!y=z"})
    assert (bad.status_code, bad.reason, bad.content) == (401, "Authentication failed!", b"")
    assert bad.headers["Connection"] == "close"
    none = _raw(sim, "GET", "/version")
    assert (none.status_code, none.reason, none.content) == (401, "No ticket", b"")


def test_login_needs_a_realm_and_takes_the_realm_parameter(sim: Any) -> None:
    """pve-access-control PVE/API2/AccessControl.pm create_ticket: `realm` is appended to
    the user name; without a realm the name fails verify_username: 401 "authentication
    failure" (JSON body: it is the handler's exception)."""
    password = sim.server.root_password
    bare = _raw(sim, "POST", "/access/ticket", data={"username": "root", "password": password})
    assert bare.status_code == 401 and bare.json()["message"] == "authentication failure\n"
    ok = _raw(
        sim,
        "POST",
        "/access/ticket",
        data={"username": "root", "realm": "pam", "password": password},
    )
    assert ok.status_code == 200 and ok.json()["data"]["username"] == "root@pam"


def test_unknown_method_names_the_relative_uri(sim: Any) -> None:
    """pve-manager PVE/HTTPServer.pm rest_handler: "Method 'GET /nodes/pve1/nope' not
    implemented" (501), the URI below /api2/json."""
    sim.allow_violations = True
    answer = _raw(sim, "GET", "/nodes/pve1/nope", headers=_token_header(sim))
    assert answer.status_code == 501
    assert answer.json()["message"] == "Method 'GET /nodes/pve1/nope' not implemented\n"


def test_permission_is_checked_before_parameters(sim: Any) -> None:
    """pve-manager PVE/HTTPServer.pm rest_handler: check_api2_permissions runs before
    PVE::RESTHandler::handle validates the parameters, so a caller without the privilege
    gets 403 even for a malformed request."""
    sim.allow_violations = True
    api = sim.api("aihost@pve!readonly")
    refused = _refusal(lambda: api.nodes(NODE).qemu(9000).config.put(cores="many"))
    assert refused.status_code == 403


def test_upload_with_a_ticket_needs_no_csrf_token(sim: Any) -> None:
    """pve-manager PVE/HTTPServer.pm auth_handler: an upload checks Datastore.AllocateTemplate
    itself and skips the CSRF check."""
    import requests

    session = requests.Session()
    login = session.post(
        f"{sim.server.url}/api2/json/access/ticket",
        data={"username": "root@pam", "password": sim.server.root_password},
        verify=str(sim.server.cert_path),
    ).json()["data"]
    session.cookies.set("PVEAuthCookie", login["ticket"])
    answer = session.post(
        f"{sim.server.url}/api2/json/nodes/{NODE}/storage/local/upload",
        data={"content": "iso"},
        files={"filename": ("seed.iso", b"x" * 64)},
        verify=str(sim.server.cert_path),
    )
    assert answer.status_code == 200, answer.text


def _token_header(sim: Any) -> dict[str, str]:
    token = sim.server.token_id
    return {"Authorization": f"PVEAPIToken={token}={sim.server.secret_for(token)}"}


def test_stop_and_shutdown_follow_vm_stop(sim: Any) -> None:
    """qemu-server PVE/API2/Qemu.pm vm_stop/vm_shutdown + PVE/QemuServer.pm _do_vm_stop:
    stopping a stopped VM is a task that ends OK; the lock check runs in the worker (a
    locked running VM's task fails); skiplock from a token is a 400."""
    sim.allow_violations = True
    api = sim.api()
    _clone(sim, api, 140, full=1)
    vm = api.nodes(NODE).qemu(140)
    assert sim.wait(api, vm.status.shutdown.post())["exitstatus"] == "OK"
    assert sim.wait(api, vm.status.stop.post())["exitstatus"] == "OK"
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"
    with sim.server.app.store.transaction() as world:  # as a running backup leaves it
        world["vms"]["140"]["config"]["lock"] = "backup"
    assert sim.wait(api, vm.status.stop.post())["exitstatus"] == "VM is locked (backup)"
    assert vm.status.current.get()["status"] == "running"
    skip = _refusal(lambda: vm.status.stop.post(skiplock=1))
    assert skip.status_code == 400 and "Only root may use this option." in str(skip.errors)


def test_pending_lists_the_digest_and_masks_a_pending_password(sim: Any) -> None:
    """qemu-server PVE/API2/Qemu.pm vm_pending + pve-guest-common config_with_pending_array:
    the config's digest is one of the keys; cipassword is masked "**********" (a pending
    one "********** ", but as a cloud-init option it is fast-plugged: never pending on a
    running VM, QemuServer.pm `$fast_plug_option`)."""
    api = sim.api()
    _clone(sim, api, 141, full=1)
    vm = api.nodes(NODE).qemu(141)
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"
    vm.config.put(cipassword="s3cret", cores=3)
    rows = {row["key"]: row for row in vm.pending.get()}
    assert rows["digest"]["value"] == vm.config.get()["digest"]
    assert rows["cipassword"] == {"key": "cipassword", "value": "**********"}
    assert rows["cores"]["pending"] == 3


def test_storage_list_content_filter_is_any_and_unknown_storage_is_refused(sim: Any) -> None:
    """pve-storage PVE/API2/Storage/Status.pm index + PVE/Storage.pm storage_info:
    content=a,b keeps a storage with any of them; storage=unknown is a 400."""
    sim.allow_violations = True
    storages = sim.api().nodes(NODE).storage
    either = {s["storage"] for s in storages.get(content="iso,images")}
    assert {"local", "local-lvm"} <= either
    refused = _refusal(lambda: storages.get(storage="nosuch"))
    assert refused.status_code == 400 and "No such storage." in str(refused.errors)


def test_nextid_with_a_taken_vmid_is_a_parameter_error(sim: Any) -> None:
    """pve-manager PVE/API2/Cluster.pm nextid: a free `vmid` comes back as given (a
    string), a taken one is raise_param_exc "VM N already exists" (400)."""
    sim.allow_violations = True
    api = sim.api()
    assert api.cluster.nextid.get(vmid=555) == "555"
    taken = _refusal(lambda: api.cluster.nextid.get(vmid=9000))
    assert taken.status_code == 400 and "VM 9000 already exists" in str(taken.errors)
