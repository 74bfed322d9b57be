"""Shell completion offers the inventory's VM, GPU and host names, as bash asks for them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "inventories" / "demo.yaml")


def complete(words: str, env_inventory: str | None = None) -> list[str]:
    """What `aihost` answers bash's completion request for the command line `words`."""
    parts = words.split(" ")
    env = {
        **os.environ,
        "_AIHOST_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(parts) - 1),
    }
    env.pop("AIHOST_INVENTORY", None)
    if env_inventory:
        env["AIHOST_INVENTORY"] = env_inventory
    out = subprocess.run(
        [sys.executable, "-m", "provision", *parts[1:-1]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (f"aihost -i {DEMO} vm up ", ["image-box", "llm-box", "small-box"]),
        (f"aihost -i {DEMO} vm status l", ["llm-box"]),
        (f"aihost -i {DEMO} gpu swap rtx", ["rtx3060", "rtx4090"]),
        (f"aihost -i {DEMO} gpu swap rtx4090 --to s", ["small-box"]),
        (f"aihost -i {DEMO} host check ", ["pve1"]),
        (f"aihost -i {DEMO} render i", ["image-box"]),
    ],
)
def test_names_come_from_the_inventory(words: str, expected: list[str]) -> None:
    assert complete(words) == expected


def test_inventory_from_the_environment() -> None:
    assert complete("aihost gpu map ", env_inventory=DEMO) == ["rtx3060", "rtx4090"]


def test_a_broken_inventory_completes_nothing_and_prints_no_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nhosts: [\n")
    assert complete(f"aihost -i {broken} vm up ") == []
