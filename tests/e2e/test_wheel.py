"""The wheel is complete: installed outside the source tree it runs and finds its templates."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest
from aihost_testing import INVENTORIES, REPO_ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(work / "dist"),
            str(REPO_ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((work / "dist").glob("aihost-*.whl"))
    env_dir = work / "venv"
    # system site packages only provide the dependencies; the venv's own copy of
    # provision (from the wheel) comes first on sys.path.
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return env_dir


def _run(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env_dir / "bin" / "aihost"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def test_wheel_installs_a_working_aihost(installed, tmp_path):
    result = _run(installed, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "vm" in result.stdout


def test_wheel_ships_templates_and_uses_them_not_the_source_tree(installed, tmp_path):
    python = installed / "bin" / "python"
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import provision.paths as p; print(p.PACKAGE_DIR); print(p.builtin_templates_dir())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout.split()
    package_dir, templates = Path(probe[0]), Path(probe[1])
    assert str(package_dir).startswith(str(installed)), package_dir
    assert templates == package_dir / "templates"
    assert any(templates.rglob("*.j2")), "templates missing from the wheel"
    inventory = tmp_path / "demo.yaml"
    inventory.write_text((INVENTORIES / "demo.yaml").read_text())
    result = _run(installed, "-i", str(inventory), "render", "llm-box", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("#cloud-config")
