"""What the rendered user-data says, read as YAML: user, agent, driver, reboot, runtimes."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError
from test_render_helpers import KEY, files, inventory, parse

from provision.cloudinit import render_meta_data, render_user_data
from provision.cloudinit.passwd import hash_password
from provision.errors import InputError
from provision.sim.guest_runtime import runtime_of
from provision.sim.guest_userdata import driver_version, parse_user_data


def render(vm=None, *, gpu=True, distro=None, secrets=None):
    values = secrets or {}
    reader = lambda ref, what: values[ref.secret_env]  # noqa: E731
    return render_user_data(inventory(vm, gpu=gpu), "box", distro=distro, secret_reader=reader)


def test_creates_the_user_with_keys_and_installs_and_starts_the_agent() -> None:
    doc = parse(render().text)
    (user,) = doc["users"]
    assert user["name"] == "alice" and user["ssh_authorized_keys"] == [KEY]
    assert user["lock_passwd"] is True and "plain_text_passwd" not in user and "passwd" not in user
    assert "qemu-guest-agent" in doc["packages"]
    assert doc["runcmd"] == ["/usr/local/sbin/aihost-firstboot"]
    firstboot = files(doc)["/usr/local/sbin/aihost-firstboot"]["content"]
    assert "systemctl start qemu-guest-agent ||" in firstboot
    assert "/usr/local/bin/aihost-health" in files(doc)


@pytest.mark.parametrize("distro", ["ubuntu-24.04", "ubuntu-22.04"])
def test_ubuntu_uses_the_signed_server_driver(distro: str) -> None:
    doc = parse(render(distro=distro).text)
    script = files(doc)["/usr/local/sbin/aihost-install-driver"]["content"]
    assert 'ubuntu-drivers install --gpgpu "nvidia:580-server$suffix"' in script.splitlines()
    assert "    suffix=-open" in script.splitlines()  # Turing and newer
    assert 'apt-get install -y "nvidia-utils-580-server"' in script.splitlines()
    # ubuntu-drivers exits 0 having installed nothing: the packages are checked after it.
    assert script.index("ubuntu-drivers install") < script.index('installed "nvidia-headless')
    firstboot = files(doc)["/usr/local/sbin/aihost-firstboot"]["content"]
    assert "/usr/local/sbin/aihost-install-driver || exit 1" in firstboot
    assert "ubuntu-drivers-common" in doc["packages"]
    assert "apt" not in doc  # no extra repository for the driver


def test_debian_uses_nvidia_repo_with_contrib_and_headers() -> None:
    doc = parse(render(distro="debian-12").text)
    script = files(doc)["/usr/local/sbin/aihost-install-driver"]["content"].splitlines()
    assert "apt-get install -y linux-image-amd64 linux-headers-amd64" in script
    assert not any("linux-headers-$(uname -r)" in line for line in script)
    assert "    apt-get install -y nvidia-driver-cuda nvidia-kernel-open-dkms" in script
    assert "    apt-get install -y nvidia-driver-cuda nvidia-kernel-dkms" in script
    assert any("repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb" in line for line in script)
    (source,) = doc["apt"]["sources"].values()
    assert source["source"].split()[3:] == ["contrib", "non-free", "non-free-firmware"]


@pytest.mark.parametrize("distro", ["ubuntu-24.04", "ubuntu-22.04", "debian-12"])
def test_gpu_vm_blacklists_nouveau_and_reboots_once(distro: str, tmp_path) -> None:
    import subprocess

    doc = parse(render(distro=distro).text)
    assert "blacklist nouveau" in files(doc)["/etc/modprobe.d/blacklist-nouveau.conf"]["content"]
    power = doc["power_state"]
    assert power["mode"] == "reboot"
    # The condition holds only after a driver install (aihost-boot removes the marker on
    # the next boot: tests/unit/test_firstboot_flow.py runs that).
    state = tmp_path / "aihost"
    state.mkdir()

    def run(text: str) -> int:
        text = text.replace("/var/lib/aihost", str(state))
        return subprocess.run(["sh", "-c", text]).returncode

    assert run(power["condition"]) == 1  # no driver installed: no reboot
    (state / "reboot-required").touch()
    assert run(power["condition"]) == 0  # driver installed: reboot
    assert "bootcmd" not in doc
    driver = files(doc)["/usr/local/sbin/aihost-install-driver"]["content"]
    assert driver.rstrip().endswith("touch /var/lib/aihost/reboot-required")
    assert "nvidia-smi >/dev/null 2>&1" in driver  # a working driver is not reinstalled


@pytest.mark.parametrize("distro", ["ubuntu-24.04", "debian-12"])
def test_no_gpu_skips_driver_and_reboot(distro: str) -> None:
    doc = parse(render(gpu=False, distro=distro).text)
    assert "power_state" not in doc and "bootcmd" not in doc
    assert "/usr/local/sbin/aihost-install-driver" not in files(doc)
    assert driver_version(parse_user_data(render(gpu=False, distro=distro).text)) is None


def test_no_setup_unit_and_no_final_message_on_every_boot() -> None:
    """The old aihost-setup.service (After=cloud-final, WantedBy=multi-user) formed an
    ordering cycle; setup now runs from cloud-init's scripts-per-boot. final_message runs
    on every boot, so the first-boot message comes from aihost-boot instead."""
    doc = parse(render().text)
    assert not [p for p in files(doc) if "aihost-setup.service" in p]
    assert "final_message" not in doc
    boot = files(doc)["/var/lib/cloud/scripts/per-boot/aihost-boot"]
    assert boot["permissions"] == "0755"
    assert "aihost: first boot of box done" in boot["content"]


def test_runtime_versions_are_pinned_and_configurable() -> None:
    doc = parse(render().text)
    setup = files(doc)["/usr/local/sbin/aihost-setup-runtime"]["content"]
    assert "VERSION=0.32.15" in setup.splitlines()
    assert "ollama-linux-$arch.tar.zst?version=$VERSION" in setup
    doc = parse(render({"runtime": "vllm", "versions": {"vllm": "0.11.0"}}).text)
    setup = files(doc)["/usr/local/sbin/aihost-setup-runtime"]["content"]
    assert "VERSION=0.11.0" in setup.splitlines() and '"vllm==$VERSION"' in setup
    doc = parse(
        render(
            {
                "runtime": "llamacpp",
                "llamacpp": {"model_path": "/m.gguf"},
                "versions": {"llamacpp": "b6000"},
            }
        ).text
    )
    setup = files(doc)["/usr/local/sbin/aihost-setup-runtime"]["content"]
    assert "VERSION=b6000" in setup.splitlines() and '--branch "$VERSION"' in setup
    with pytest.raises(Exception, match="versions"):
        render({"versions": {"ollama": "latest"}})


@pytest.mark.parametrize("unit", ["ollama.service", "vllm.service", "llama-server.service"])
def test_runtime_units_have_a_start_limit(unit: str) -> None:
    runtime = {"ollama.service": "ollama", "vllm.service": "vllm"}.get(unit, "llamacpp")
    vm = {"runtime": runtime, "llamacpp": {"model_path": "/m.gguf"}}
    text = files(parse(render(vm).text))[f"/etc/systemd/system/{unit}"]["content"]
    lines = text.splitlines()
    unit_section = lines[: lines.index("[Service]")]
    assert any(re.fullmatch(r"StartLimitIntervalSec=\d+", line) for line in unit_section)
    assert any(re.fullmatch(r"StartLimitBurst=[1-9]", line) for line in unit_section)


@pytest.mark.parametrize("cuda", [True, False])
def test_cuda_toolkit_only_when_asked(cuda: bool) -> None:
    doc = parse(render({"cuda": cuda}).text)
    script = files(doc).get("/usr/local/sbin/aihost-install-cuda")
    assert (script is not None) == cuda
    if cuda:
        assert re.search(r"^apt-get install -y cuda-toolkit-12-\d+$", script["content"], re.M)
        firstboot = files(doc)["/usr/local/sbin/aihost-firstboot"]["content"]
        assert "/usr/local/sbin/aihost-install-cuda || exit 1" in firstboot


def test_ollama_unit_binds_where_asked_and_pulls_models_over_the_api() -> None:
    text = render({"listen": "0.0.0.0", "port": 11500, "models": ["qwen2.5:7b", "llama3.1"]}).text
    doc = parse(text)
    unit = files(doc)["/etc/systemd/system/ollama.service"]["content"]
    assert 'Environment="OLLAMA_HOST=0.0.0.0:11500"' in unit.splitlines()
    assert files(doc)["/etc/aihost/models"]["content"] == "qwen2.5:7b\nllama3.1\n"
    setup = files(doc)["/usr/local/sbin/aihost-setup-runtime"]["content"]
    pull = 'aihost-state ollama-pull "$URL" "$model"'  # POST /api/pull, streamed
    assert pull in setup and "ollama pull" not in setup
    assert '"/api/pull"' in files(doc)["/usr/local/sbin/aihost-state"]["content"]
    assert "URL=http://127.0.0.1:11500" in setup.splitlines()
    assert "zstd -d" in setup and "zstd" in doc["packages"]
    assert setup.index("runtime() {") < setup.index("models() {") < setup.index(pull)
    runtime = runtime_of(parse_user_data(text))
    assert runtime and (runtime.host, runtime.port) == ("0.0.0.0", 11500)
    assert runtime.models == ["qwen2.5:7b", "llama3.1:latest"]


def test_vllm_unit_serves_first_model_and_token_only_in_root_file() -> None:
    token = 'hf_SeCrEt$(x)`y`"z'
    rendered = render(
        {
            "runtime": "vllm",
            "models": ["Qwen/Qwen2.5-7B-Instruct", "other"],
            "vllm": {"gpu_memory_utilization": 0.85, "max_model_len": 16384},
            "hf_token": {"secret_env": "HF", "store_in_user_data": True},
        },
        secrets={"HF": token},
    )
    doc = parse(rendered.text)
    unit = files(doc)["/etc/systemd/system/vllm.service"]["content"]
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert exec_start == (
        'ExecStart=/opt/vllm/bin/vllm serve "Qwen/Qwen2.5-7B-Instruct" --host 127.0.0.1 '
        "--port 8000 --gpu-memory-utilization 0.85 --max-model-len 16384"
    )
    assert "EnvironmentFile=-/etc/aihost/vllm.env" in unit.splitlines()
    env = files(doc)["/etc/aihost/vllm.env"]
    assert env["permissions"] == "0600" and env["owner"] == "root:root"
    assert env["content"] == 'HF_TOKEN="hf_SeCrEt\\$(x)\\`y\\`\\"z"\n'
    everywhere_else = [f["content"] for p, f in files(doc).items() if p != "/etc/aihost/vllm.env"]
    assert not any("hf_SeCrEt" in c for c in everywhere_else + doc["runcmd"])
    assert "hf_SeCrEt" not in rendered.masked() and token in rendered.secrets
    assert files(doc)["/etc/aihost/models"]["content"] == "Qwen/Qwen2.5-7B-Instruct\n"


def test_vllm_without_model_is_refused() -> None:
    with pytest.raises(InputError, match="vllm serves the first"):
        render({"runtime": "vllm", "models": []})


def test_llamacpp_downloads_the_gguf_and_offloads_all_layers() -> None:
    url = "https://huggingface.co/x/y/resolve/main/Model-Q4_K_M.gguf?download=true"
    doc = parse(
        render(
            {
                "runtime": "llamacpp",
                "models": [],
                "port": 9000,
                "llamacpp": {"model_url": url, "context": 4096, "sha256": "ab" * 32},
            }
        ).text
    )
    unit = files(doc)["/etc/systemd/system/llama-server.service"]["content"]
    assert (
        'ExecStart=/usr/local/bin/llama-server -m "/var/lib/aihost/models/Model-Q4_K_M.gguf"'
        ' --alias "Model-Q4_K_M.gguf" --host 127.0.0.1 --port 9000 -c 4096 -np 1 -ngl 999'
    ) in unit.splitlines()
    setup = files(doc)["/usr/local/sbin/aihost-setup-runtime"]["content"]
    assert f"MODEL_URL='{url}'" in setup.splitlines() and "-DGGML_CUDA=ON" in setup
    assert files(doc)["/etc/aihost/models"]["content"] == "Model-Q4_K_M.gguf\n"
    assert "aihost-install-cuda" in files(doc)["/usr/local/sbin/aihost-firstboot"]["content"]
    # The shared-library build is installed whole (libllama/libggml beside the binary).
    assert 'cmake --install "$src/build"' in setup
    assert '-DCMAKE_INSTALL_RPATH="$PREFIX/lib"' in setup


def test_llamacpp_needs_a_model_source() -> None:
    with pytest.raises(ValidationError, match="runtime llamacpp needs its GGUF model"):
        render({"runtime": "llamacpp"})
    with pytest.raises(ValidationError, match="needs its sha256"):
        render({"runtime": "llamacpp", "llamacpp": {"hf_repo": "a/b", "hf_file": "m.gguf"}})
    with pytest.raises(ValidationError, match="hf_repo and hf_file together"):
        render({"runtime": "llamacpp", "llamacpp": {"hf_repo": "a/b", "sha256": "ab" * 32}})


def test_context_and_parallel_become_the_runtimes_own_settings() -> None:
    def unit(vm: dict[str, object], name: str) -> list[str]:
        return files(parse(render(vm).text))[f"/etc/systemd/system/{name}"]["content"].splitlines()

    ollama = unit({"runtime": "ollama", "context": 16384, "parallel": 2}, "ollama.service")
    assert "Environment=OLLAMA_CONTEXT_LENGTH=16384" in ollama
    assert "Environment=OLLAMA_NUM_PARALLEL=2" in ollama
    assert not [x for x in unit({"runtime": "ollama"}, "ollama.service") if "OLLAMA_CON" in x]
    vllm = unit(
        {
            "runtime": "vllm",
            "models": ["Qwen/Qwen2.5-7B-Instruct"],
            "context": 16384,
            "parallel": 8,
        },
        "vllm.service",
    )
    assert any("--max-model-len 16384 --max-num-seqs 8" in x for x in vllm)
    llama = unit(
        {
            "runtime": "llamacpp",
            "context": 4096,
            "parallel": 3,
            "llamacpp": {"model_path": "/m.gguf"},
        },
        "llama-server.service",
    )
    assert any(x.endswith("-c 12288 -np 3 -ngl 999") for x in llama)  # 3 slots of 4096


def test_runtime_none_writes_no_units() -> None:
    doc = parse(render({"runtime": "none", "models": []}).text)
    assert not [p for p in files(doc) if p.startswith("/etc/systemd/system/")]
    health = files(doc)["/usr/local/bin/aihost-health"]["content"]
    assert "RUNTIME=none" in health.splitlines() and "URL=''" in health.splitlines()


def test_ipv6_listen_is_bracketed() -> None:
    doc = parse(render({"listen": "::"}).text)
    unit = files(doc)["/etc/systemd/system/ollama.service"]["content"]
    assert 'Environment="OLLAMA_HOST=[::]:11434"' in unit.splitlines()
    health = files(doc)["/usr/local/bin/aihost-health"]["content"]
    assert "URL='http://[::1]:11434'" in health.splitlines()


def test_password_is_a_secret_masked_in_output() -> None:
    rendered = render(
        {"user": {"name": "alice", "password": {"secret_env": "PW"}}}, secrets={"PW": "pa: ss#word"}
    )
    (user,) = parse(rendered.text)["users"]
    assert user["passwd"] == hash_password("box", "alice", "pa: ss#word")
    assert user["passwd"].startswith("$6$") and user["lock_passwd"] is False
    assert "plain_text_passwd" not in user and "pa: ss#word" not in rendered.text
    (masked_user,) = parse(rendered.masked())["users"]
    assert masked_user["passwd"] == "***"
    assert "pa: ss#word" not in rendered.masked() and "pa: ss#word" not in repr(rendered)


def test_render_is_deterministic_and_meta_data_is_yaml() -> None:
    assert render().sha256 == render().sha256
    import yaml

    assert yaml.safe_load(render_meta_data("box", "aihost-box-g2")) == {
        "instance-id": "aihost-box-g2",
        "local-hostname": "box",
    }


def test_unknown_distro_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown distro"):
        render(distro="fedora-40")
