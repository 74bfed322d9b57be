"""The real guest lane runs only with AIHOST_GUEST_LANE=1 (.ci/run's second pytest run,
`-m guest`): it boots QEMU guests for minutes, the fast suite must not."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from lane import TCG, build_image, missing_tools


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the lane's tests unless AIHOST_GUEST_LANE=1."""
    if os.environ.get("AIHOST_GUEST_LANE") == "1":
        return
    skip = pytest.mark.skip(reason="the real guest lane: set AIHOST_GUEST_LANE=1 (.ci/run does)")
    for item in items:
        if "guest" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def image() -> Path:
    """The cached guest image (built on the first use)."""
    missing = missing_tools()
    if missing:
        pytest.fail(f"the guest lane needs {', '.join(missing)} (.ci/run installs them)")
    start = time.monotonic()
    path = build_image()
    print(
        f"\nguest lane: image ready in {time.monotonic() - start:.0f} s ({path}, "
        f"{'TCG' if TCG else 'KVM'})"
    )
    return path
