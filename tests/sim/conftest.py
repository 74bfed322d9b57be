"""Fixtures for the simulator tests: a running SimServer (task durations 0, no 401 delay,
requests checked against Proxmox's schema when ../shared/pve/apidoc.json is present) and
plain proxmoxer clients for its tokens and for a root@pam password login."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aihost_testing import SHARED_DIR, token_client
from proxmoxer import ProxmoxAPI

from provision.sim.server import SimServer

SCHEMA = SHARED_DIR / "pve" / "apidoc.json"
FIXTURES = Path(__file__).resolve().parents[2] / "provision" / "sim" / "fixtures"


@functools.cache
def _schema() -> Any:
    from provision.sim.apischema import ApiSchema

    return ApiSchema.load(SCHEMA)


def schema_validator() -> Any:
    """apischema's validator over the real schema; None when the file is absent (unless
    AIHOST_REQUIRE_SCHEMA=1, where its absence fails the test)."""
    if not SCHEMA.exists():
        if os.environ.get("AIHOST_REQUIRE_SCHEMA") == "1":
            pytest.fail(f"{SCHEMA} is missing and AIHOST_REQUIRE_SCHEMA=1")
        return None
    return _schema().validate


class FakeClock:
    """A clock tests move by hand (tasks complete when it passes their end)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class Sim:
    """A running simulator plus client helpers."""

    server: SimServer
    state_dir: Path
    allow_violations: bool = False  # set by tests that send invalid requests on purpose

    def api(self, token: str | None = None, **kw: Any) -> ProxmoxAPI:
        """A plain proxmoxer client with an API token (default: the admin token)."""
        return token_client(self.server, token, **kw)

    def root(self) -> ProxmoxAPI:
        """A plain proxmoxer client logged in as root@pam with its password (ticket)."""
        return ProxmoxAPI(
            "127.0.0.1",
            port=self.server.port,
            user="root@pam",
            password=self.server.root_password,
            verify_ssl=str(self.server.cert_path),
        )

    def wait(self, api: ProxmoxAPI, upid: str) -> dict[str, Any]:
        """The status of a task (durations are 0: finished by the next request)."""
        node = upid.split(":")[1]
        status: dict[str, Any] = api.nodes(node).tasks(upid).status.get()
        return status


def _make(
    tmp_path_factory: pytest.TempPathFactory, fixture: str | None = None, **kw: Any
) -> Iterator[Sim]:
    state = tmp_path_factory.mktemp("sim")
    path = FIXTURES / f"{fixture}.yaml" if fixture else None
    kw.setdefault("durations", {})
    server = SimServer(
        state, path, sftp_port=None, validator=schema_validator(), auth_delay=0.0, **kw
    ).start()
    made = Sim(server, state)
    try:
        yield made
    finally:
        schema = server.app.schema_violations()
        server.stop()
    assert made.allow_violations or not schema, f"invalid requests: {schema}"


@pytest.fixture
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """The default fixture (pve1 with an RTX 4090 and an RTX 3060), durations 0."""
    yield from _make(tmp_path_factory)


@pytest.fixture
def two_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """The two-node fixture (pve1, pve2 and pve3 without IOMMU), durations 0."""
    yield from _make(tmp_path_factory, "two-node")


@pytest.fixture
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sim, FakeClock]]:
    """The default fixture with real task durations and a hand-moved clock (which a delayed
    answer, such as an agent that does not answer, moves on)."""
    clock = FakeClock()
    for made in _make(tmp_path_factory, durations=None, clock=clock, wait=clock.advance):
        yield made, clock


@pytest.fixture
def clocked_two_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sim, FakeClock]]:
    """The two-node fixture with real task durations and a hand-moved clock."""
    clock = FakeClock()
    for made in _make(
        tmp_path_factory, "two-node", durations=None, clock=clock, wait=clock.advance
    ):
        yield made, clock


@pytest.fixture
def make_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sim]]:
    """Start extra simulators (own fixture file, state dir, options); stopped afterwards."""
    started: list[SimServer] = []

    def start(fixture: Path | None = None, state: Path | None = None, **kw: Any) -> Sim:
        state = state or tmp_path_factory.mktemp("sim")
        kw.setdefault("durations", {})
        server = SimServer(
            state, fixture, sftp_port=None, validator=schema_validator(), auth_delay=0.0, **kw
        ).start()
        started.append(server)
        return Sim(server, state)

    yield start
    for server in started:
        server.stop()
