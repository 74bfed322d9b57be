"""The user-data goes up over SSH while the VM is configured and its disk grown (neither
needs the files: Proxmox reads cicustom's snippets at start); the start waits for the
upload, and a failed upload still removes the fresh VM."""

from __future__ import annotations

import threading

from aihost_testing import run_aihost
from test_gpu_swap import api

from provision.errors import SSHError
from provision.pve.vm import Vm
from provision.vmops import apply

VMS = {"llm-box": {"gpu": "rtx4090", "runtime": "none"}}


def test_the_vm_is_configured_while_its_user_data_uploads(sim, tmp_path, monkeypatch):
    configured = threading.Event()
    write, upload = Vm.write, apply.upload_snippets

    def configure(self, params, **kw):
        done = write(self, params, **kw)
        if "cicustom" in params:
            configured.set()
        return done

    overlapped = []

    def slow_upload(*args, **kw):
        overlapped.append(configured.wait(5))  # the config write comes meanwhile
        return upload(*args, **kw)

    monkeypatch.setattr(Vm, "write", configure)
    monkeypatch.setattr(apply, "upload_snippets", slow_upload)
    inventory = str(sim.inventory(tmp_path / "inv.yaml", VMS))
    result = run_aihost("-i", inventory, "vm", "up", "llm-box")
    assert result.exit_code == 0, result.stderr
    assert overlapped == [True]
    assert "upload-user-data, configure, resize, start)" in result.stdout
    again = run_aihost("-i", inventory, "vm", "up", "llm-box")
    assert "no changes" in again.stdout  # the snippets are there: nothing to upload


def test_a_failed_upload_removes_the_fresh_vm(sim, tmp_path, monkeypatch):
    def failing_upload(*args, **kw):
        raise SSHError("connection to root@127.0.0.1:22 lost while writing the snippets")

    monkeypatch.setattr(apply, "upload_snippets", failing_upload)
    inventory = str(sim.inventory(tmp_path / "inv.yaml", VMS))
    result = run_aihost("-i", inventory, "vm", "up", "llm-box")
    assert result.exit_code == 3, result.stderr
    assert "lost while writing the snippets" in result.stderr
    names = [vm.get("name") for vm in api(sim, "GET", "/nodes/pve1/qemu")]
    assert "llm-box" not in names
    lease = api(sim, "GET", "/cluster/mapping/pci/rtx4090").get("description") or ""
    assert '"holder":' not in lease or '"holder":null' in lease.replace(" ", "")
