"""Every template combination checked by the real tools: cloud-init's schema and shellcheck.

3 distros x 4 runtimes x GPU/no GPU x CUDA on/off = 48 documents; the GPU ones with CUDA
also use the host's model store (its virtiofs mount unit and the runtime's model dir).
`cloud-init schema` (Debian 12's 22.4) spends about 0.2 s of CPU importing cloud-init a
run, so its entry point checks many documents per process, two processes at once
(aihost_testing.cloud_init_schema_failures); shellcheck gets every distinct script of
every document in one run. Absent tools skip the test, unless AIHOST_REQUIRE_TOOLS=1
(CI), where absence fails it.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from aihost_testing import cloud_init_schema_failures, require_tool

from provision.cloudinit import render_user_data
from provision.inventory.model import Inventory

DISTROS = ("ubuntu-24.04", "ubuntu-22.04", "debian-12")
RUNTIMES = ("ollama", "vllm", "llamacpp", "none")
COMBOS = list(itertools.product(DISTROS, RUNTIMES, (True, False), (True, False)))
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9vZ2xlZ29vZ2xlZ29vZ2xl me@laptop"


def render_combo(distro: str, runtime: str, gpu: bool, cuda: bool) -> str:
    """The user-data of one combination, with a password and a token so every part renders."""
    vm: dict[str, Any] = {
        "host": "pve",
        "template": "tpl",
        "distro": distro,
        "runtime": runtime,
        "cuda": cuda,
        "models": [] if runtime == "none" else ["llama3.1:8b"],
        "user": {"name": "alice", "ssh_keys": [KEY], "password": {"secret_env": "PW"}},
        "hf_token": {"secret_env": "HF", "store_in_user_data": True},
        "listen": "0.0.0.0",
        "llamacpp": {"model_url": "https://example.org/m/Model-Q4_K_M.gguf", "sha256": "ab" * 32},
    }
    if gpu:
        vm["gpu"] = "g1"
    inv = Inventory.model_validate(
        {
            "hosts": {
                "pve": {"api": "sim", "model_store": {"path": "/srv/models"} if cuda else None}
            },
            "gpus": {"g1": {"host": "pve", "mapping": "rtx", "vram_gb": 24}},
            "vms": {"box": vm},
        }
    )
    values = {"PW": "pw-secret", "HF": "hf_secrettoken"}
    return render_user_data(inv, "box", secret_reader=lambda ref, _w: values[ref.secret_env]).text


def shell_scripts(doc: dict[str, Any]) -> dict[str, str]:
    """Every shell text in a document: write_files with a #!/bin/sh shebang, and one script made of
    the runcmd, bootcmd and power_state condition lines (cloud-init runs them with sh)."""
    scripts = {
        item["path"]: item["content"]
        for item in doc.get("write_files", [])
        if str(item.get("content", "")).startswith("#!/bin/sh")
    }
    lines = [*doc.get("runcmd", []), *doc.get("bootcmd", [])]
    if "power_state" in doc:
        lines.append(doc["power_state"]["condition"])
    assert all(isinstance(line, str) for line in lines)
    scripts["runcmd"] = "#!/bin/sh\n" + "\n".join(lines) + "\n"
    return scripts


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[Any, ...], Path]:
    out = tmp_path_factory.mktemp("userdata")
    paths = {}
    for combo in COMBOS:
        path = out / ("-".join(str(part) for part in combo) + ".yaml")
        path.write_text(render_combo(*combo), encoding="utf-8")
        paths[combo] = path
    return paths


UNITS = {"ollama": "ollama.service", "vllm": "vllm.service", "llamacpp": "llama-server.service"}


def test_every_combination_has_its_parts(rendered: dict[tuple[Any, ...], Path]) -> None:
    assert len(rendered) == 48
    for (distro, runtime, gpu, cuda), path in rendered.items():
        doc = yaml.safe_load(path.read_text())
        paths = {item["path"] for item in doc["write_files"]}
        assert ("/usr/local/sbin/aihost-install-driver" in paths) == gpu, path.name
        assert ("power_state" in doc) == gpu, path.name
        toolkit = cuda or (gpu and runtime == "llamacpp")
        assert ("/usr/local/sbin/aihost-install-cuda" in paths) == toolkit, path.name
        units = {p.rsplit("/", 1)[1] for p in paths if p.startswith("/etc/systemd/system/")}
        store = {"var-lib-aihost-models.mount"} if gpu and cuda else set()
        assert units == ({UNITS[runtime], *store} if runtime != "none" else set()), path.name
        assert "/var/lib/cloud/scripts/per-boot/aihost-boot" in paths, path.name
        assert doc["runcmd"] == ["/usr/local/sbin/aihost-firstboot"], path.name
        assert ("apt" in doc) == (distro == "debian-12" and (gpu or cuda)), path.name
        assert "qemu-guest-agent" in doc["packages"] and "/usr/local/bin/aihost-health" in paths


def test_cloud_init_schema_accepts_every_combination(
    rendered: dict[tuple[Any, ...], Path],
) -> None:
    failed = cloud_init_schema_failures(list(rendered.values()))
    assert not failed, "\n".join(failed)


def test_shellcheck_finds_nothing_in_any_script(
    rendered: dict[tuple[Any, ...], Path],
    tmp_path: Path,
) -> None:
    tool = require_tool("shellcheck")
    found = 0
    written: dict[str, Path] = {}  # one file per distinct text: shellcheck's verdict is the same
    for path in rendered.values():
        for index, (name, text) in enumerate(
            shell_scripts(yaml.safe_load(path.read_text())).items()
        ):
            found += 1
            if text not in written:
                written[text] = tmp_path / f"{path.stem}-{index}-{Path(name).name}.sh"
                written[text].write_text(text, encoding="utf-8")
    assert found >= 48 * 2
    run = subprocess.run(
        [tool, "-s", "sh", "-S", "style", *map(str, written.values())],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[:5000]


def test_a_broken_document_is_refused_by_the_schema(tmp_path: Path) -> None:
    """The schema check can fail: a wrong type for a known key exits non-zero."""
    tool = require_tool("cloud-init")
    bad = tmp_path / "bad.yaml"
    bad.write_text("#cloud-config\npackages: qemu-guest-agent\npower_state: {mode: later}\n")
    run = subprocess.run(
        [tool, "schema", "--config-file", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 0
    assert cloud_init_schema_failures([bad]) != []  # and so can the checks of the tests above


def test_every_curl_of_every_script_gives_up_on_a_host_that_never_answers(
    rendered: dict[tuple[Any, ...], Path],
) -> None:
    """A firewall that drops packets (no refusal) leaves curl at its own 300 s connect
    timeout, which --retry counts as transient: six tries, half an hour of first boot.
    Every curl carries --connect-timeout or --max-time."""
    calls = 0
    for path in rendered.values():
        for text in shell_scripts(yaml.safe_load(path.read_text())).values():
            for line in text.splitlines():
                code = line.split("#", 1)[0]
                if "curl " not in code:
                    continue
                calls += 1
                assert "--connect-timeout" in code or "--max-time" in code, f"{path.name}: {line}"
    assert calls >= 48
