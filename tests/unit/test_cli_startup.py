"""Start-up stays light: --help imports neither proxmoxer, paramiko, jinja2 nor pydantic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from aihost_testing import run_aihost

HEAVY = ("proxmoxer", "paramiko", "jinja2", "requests", "pydantic")
PROBE = """
import json, sys
from provision.cli.main import run
code = run({args!r})
print(json.dumps({{"code": code, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def _imported_after(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_root_help_imports_nothing_heavy():
    result = _imported_after(["--help"])
    assert result == {"code": 0, "heavy": []}


@pytest.mark.parametrize("group", ["vm", "gpu", "host", "inventory", "models", "render", "sim"])
def test_group_help_imports_no_api_or_ssh_library(group):
    result = _imported_after([group, "--help"])
    assert result["code"] == 0
    assert not {"proxmoxer", "paramiko", "jinja2"} & set(result["heavy"])


def test_version():
    from provision import __version__

    result = run_aihost("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_unknown_command_is_exit_2():
    result = run_aihost("frobnicate")
    assert result.exit_code == 2
    assert "No such command" in result.stderr


EXIT_PROBE = """
import atexit, sys, threading
atexit.register(print, "exit handler ran", flush=True)

class Finalized:
    def __del__(self):
        print("interpreter teardown ran", flush=True)

kept = Finalized()
if "--thread" in sys.argv:
    # alive until the CLI chose its way out: sys.exit (the normal exit) releases it
    released, real_exit = threading.Event(), sys.exit

    def exit_and_release(code):
        released.set()
        real_exit(code)

    sys.exit = exit_and_release
    threading.Thread(target=lambda: (released.wait(10), print("thread finished"))).start()
from provision.cli.main import main
main(["--version"])
"""


def _exit_probe(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, *extra], capture_output=True, text=True, check=False
    )


def test_the_console_exit_runs_exit_handlers_but_skips_the_interpreter_teardown():
    result = _exit_probe()
    assert result.returncode == 0
    assert "aihost" in result.stdout and "exit handler ran" in result.stdout
    assert "interpreter teardown ran" not in result.stdout


def test_the_console_exit_waits_for_a_thread_still_running():
    result = _exit_probe("--thread")
    assert result.returncode == 0
    assert "thread finished" in result.stdout  # joined, not cut off by os._exit


def test_the_console_exit_is_the_normal_one_under_a_profiler(tmp_path):
    stats = tmp_path / "profile.out"
    result = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "provision", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert stats.stat().st_size > 0  # cProfile writes its file after the module returned


def test_commands_for_a_real_proxmox_do_not_import_the_simulator():
    # the simulated API (its routes and parameter tables) took ~0.1 s of every `vm up`
    # and `gpu swap` against a real node: it is imported only when an `api: sim` host
    # starts one
    probe = (
        "import sys, provision.cli.vm_cmd, provision.cli.gpu_cmd, provision.vmops.apply;"
        "print(sorted(m for m in sys.modules if m.startswith('provision.sim.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.replace("'", '"')) == ["provision.sim.registry", "provision.sim.state"]


SSH_PROBE = """
import json, sys
import provision.pve.connect, provision.delivery.snippets, provision.ssh.transport
before = "paramiko" in sys.modules
from provision.ssh.lib import load_paramiko
paramiko = load_paramiko()
after = {m: m in sys.modules for m in ("paramiko", "invoke", "unittest.mock")}
import invoke  # still importable by whoever wants it
print(json.dumps({"before": before, "after": after, "transport": paramiko.Transport.__name__,
                  "invoke": invoke.__name__}))
"""


def test_paramiko_is_imported_on_first_use_and_without_invoke():
    # paramiko costs ~0.1 s of CPU and its config module imports invoke (and unittest.mock,
    # ~60 ms more) only to run SSH config `Match exec` lines, which aihost never reads
    out = subprocess.run(
        [sys.executable, "-c", SSH_PROBE], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {
        "before": False,
        "after": {"paramiko": True, "invoke": False, "unittest.mock": False},
        "transport": "Transport",
        "invoke": "invoke",
    }


THREADS_PROBE = """
import json, threading
from provision.ssh.lib import load_paramiko
go, seen = threading.Barrier(16), []
def connect():
    go.wait()
    seen.append(hasattr(load_paramiko(), "Transport"))
threads = [threading.Thread(target=connect) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(seen))
"""


def test_paramiko_loaded_by_several_threads_at_once_is_whole_in_each():
    # `vm up --all` connects from one thread per VM: a thread must never get the module
    # another thread is still importing (`vm up --all` of 5 VMs failed with "partially
    # initialized module 'paramiko' has no attribute 'Transport'")
    out = subprocess.run(
        [sys.executable, "-c", THREADS_PROBE], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [True] * 16
