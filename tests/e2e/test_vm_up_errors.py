"""`vm up` failures: one clear line, the right exit code, and Proxmox left as it was."""

from __future__ import annotations

import threading
import time

from aihost_testing import run_aihost

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}


def _up(inventory, *args: str):
    return run_aihost("-i", str(inventory), "vm", "up", *args)


def _vm_names(sim) -> set[str]:
    from proxmoxer import ProxmoxAPI

    server = sim.server
    host, port = server.url.removeprefix("https://").split(":")
    user, token = server.token_id.split("!")
    api = ProxmoxAPI(
        host,
        port=int(port),
        user=user,
        token_name=token,
        token_value=server.token_secret,
        verify_ssl=str(server.cert_path),
    )
    return {vm["name"] for vm in api.nodes("pve1").qemu.get() if not vm.get("template")}


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("aihost: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_bad_token_is_exit_3_and_writes_nothing(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    sim.token_file.write_text("00000000-0000-0000-0000-000000000000\n")
    result = _up(inventory, "llm-box")
    assert result.exit_code == 3
    line = _one_error_line(result)
    assert "authentication failure" in line.lower() or "refused" in line.lower()
    assert "00000000-0000" not in result.stderr + result.stdout
    assert sim.writes() == []


def test_wrong_fingerprint_is_refused_showing_the_real_one(sim, tmp_path):
    wrong = ":".join(["AB"] * 32)
    inventory = sim.inventory(
        tmp_path / "inv.yaml", {"llm-box": LLM}, host={"tls": {"fingerprint": wrong}}
    )
    result = _up(inventory, "llm-box")
    assert result.exit_code == 3
    line = _one_error_line(result)
    assert sim.server.fingerprint in line
    assert sim.writes() == []


def test_self_signed_certificate_without_a_pin_is_refused_with_how_to_pin(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host={"tls": {}})
    result = _up(inventory, "llm-box")
    assert result.exit_code == 3
    line = _one_error_line(result)
    assert sim.server.fingerprint in line and "fingerprint" in line
    assert sim.requests() == []


def test_unreachable_host_names_the_url(sim, tmp_path):
    inventory = sim.inventory(
        tmp_path / "inv.yaml", {"llm-box": LLM}, host={"api": "https://127.0.0.1:9"}
    )
    result = _up(inventory, "llm-box")
    assert result.exit_code == 3
    assert "127.0.0.1:9" in _one_error_line(result)


def test_failed_clone_task_reports_the_task_error_and_leaves_no_vm(sim, tmp_path):
    sim.control(
        "faults",
        {"kind": "task_error", "task": "qmclone", "message": "storage 'local-lvm' is full"},
    )
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    result = _up(inventory, "llm-box")
    assert result.exit_code == 3
    assert "storage 'local-lvm' is full" in _one_error_line(result)
    assert "llm-box" not in _vm_names(sim)


def test_failed_configure_removes_the_fresh_clone_again(sim, tmp_path):
    sim.control(
        "faults",
        {
            "kind": "http500",
            "method": "POST",
            "path": r"/qemu/\d+/config$",
            "message": "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout",
        },
    )
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    result = _up(inventory, "llm-box")
    assert result.exit_code == 3
    assert "got timeout" in _one_error_line(result)
    assert "llm-box" not in _vm_names(sim)


def test_a_vm_being_created_elsewhere_is_reported_locked(sim, tmp_path):
    sim.control("durations", {"qmclone": 2})
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    first = threading.Thread(target=_up, args=(inventory, "llm-box", "--no-wait"))
    first.start()
    deadline = time.monotonic() + 10
    while not any(r["path"].endswith("/clone") for r in sim.requests()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = _up(inventory, "llm-box")
    first.join()
    assert second.exit_code == 4
    # Proxmox shows a VM being cloned as "VM 100": the second run made its own and lost
    assert "made at the same time by another run (VM 100" in _one_error_line(second)
    assert "removed the new VM 101 again" in second.stderr
    assert _vm_names(sim) == {"llm-box"}


def test_guest_without_a_working_driver_fails_at_the_nvidia_stage(sim, tmp_path):
    overrides = tmp_path / "templates" / "distro"
    overrides.mkdir(parents=True)
    # A user template that forgets the driver: the guest boots, but nvidia-smi is missing.
    (overrides / "ubuntu-24.04.yaml.j2").write_text("packages: []\n")
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    text = inventory.read_text()
    inventory.write_text(f"templates_dir: {tmp_path / 'templates'}\n{text}")
    result = _up(inventory, "llm-box")
    assert result.exit_code == 3
    line = _one_error_line(result)
    # qemu-ga cannot spawn it (no shell, no exit 127): the agent call itself fails
    assert "nvidia-smi is not installed in the guest (No such file or directory)" in line
    assert "driver is not installed" in line
    execs = [r for r in sim.requests() if r["path"].endswith("/agent/exec")]
    # the runtime's health is asked meanwhile (its exec may come after this one)
    nvidia = [r for r in execs if "nvidia-smi" in str(r["params"]["command"])]
    assert [r["status"] for r in nvidia] == [500]


def test_fleet_up_all_brings_several_vms_up_and_reports_each(sim, tmp_path):
    vms = {f"box{i}": {"runtime": "none"} for i in range(3)}
    vms["llm-box"] = LLM
    inventory = sim.inventory(tmp_path / "inv.yaml", vms)
    result = run_aihost("-i", str(inventory), "-o", "json", "vm", "up", "--all")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert sorted(d["vm"] for d in data) == ["box0", "box1", "box2", "llm-box"]
    vmids = [d["vmid"] for d in data]
    assert len(set(vmids)) == 4


def test_fleet_failure_of_one_vm_does_not_stop_the_others(sim, tmp_path):
    vms = {"good": {"runtime": "none"}, "bad": {"runtime": "none", "template": "no-such"}}
    inventory = sim.inventory(tmp_path / "inv.yaml", vms)
    result = run_aihost("-i", str(inventory), "vm", "up", "--all")
    assert result.exit_code != 0
    assert "good: done" in result.stdout
    assert "bad: FAILED" in result.stdout and "no template named 'no-such'" in result.stdout
    assert "good" in _vm_names(sim)


def test_list_status_down_and_destroy(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM, "other": {"runtime": "none"}})
    assert _up(inventory, "llm-box").exit_code == 0
    listing = run_aihost("-i", str(inventory), "-o", "json", "vm", "list").json()
    by_name = {row["vm"]: row for row in listing}
    assert by_name["llm-box"]["status"] == "running" and by_name["other"]["status"] == "absent"
    down = run_aihost("-i", str(inventory), "vm", "down", "llm-box")
    assert down.exit_code == 0 and "shut down" in down.stdout
    status = run_aihost("-i", str(inventory), "-o", "json", "vm", "status", "llm-box").json()
    assert status["status"] == "stopped"
    refused = run_aihost("-i", str(inventory), "vm", "destroy", "llm-box")
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    gone = run_aihost("-i", str(inventory), "-o", "json", "vm", "destroy", "llm-box", "--yes")
    assert gone.exit_code == 0, gone.stderr
    assert "llm-box" not in _vm_names(sim)
    snippets = sim.state_dir / "storage" / "local" / "snippets"
    assert not list(snippets.glob("aihost-llm-box-*"))
