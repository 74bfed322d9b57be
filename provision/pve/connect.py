"""From an inventory host entry to a ready PveClient: credentials, TLS, the simulator.

TLS verification is always on: a `tls.fingerprint` pins the exact certificate (SHA-256,
no CA needed), a `tls.ca_file` names the CA bundle, otherwise the system's CAs apply.

`api: sim` starts the built-in simulated Proxmox in this process (one per state
directory, stopped at exit: provision.sim.registry) and talks to it over real HTTPS like
to any other host. The inventory's own settings win where given (a token, a password, a
fingerprint, a CA file), so failures can be rehearsed; the rest come from the simulator:
its admin token, its root@pam password, its certificate's fingerprint.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from provision.errors import InputError
from provision.inventory.fixture_ref import resolve_fixture
from provision.inventory.model import Host, Inventory, SecretRef, SshSettings
from provision.inventory.secrets import read_secret
from provision.paths import sim_state_dir
from provision.pve.client import PveClient
from provision.pve.tls import PinnedAdapter
from provision.sim import registry
from provision.ssh.transport import SshTarget

if TYPE_CHECKING:
    from provision.sim.server import SimServer


def connect(
    inv: Inventory, host_name: str, *, progress: Callable[[str], None] | None = None
) -> PveClient:
    """The API client for inventory host host_name (no request is sent yet)."""
    host = inv.host(host_name)
    node = inv.node_of(host_name)
    use_password = wants_password(inv, host_name)
    if host.api == "sim":
        return _connect_sim(host_name, host, node, use_password, inv.source, progress)
    if use_password:
        assert host.password is not None
        secret = read_secret(host.password, f"password of {host.password.user}")
        return _build(
            host_name, host, node, url=host.api, token=None, password=(host.password.user, secret)
        )
    assert host.token is not None
    secret = read_secret(host.token, f"secret of API token {host.token.id}")
    return _build(host_name, host, node, url=host.api, token=(host.token.id, secret), password=None)


def wants_password(inv: Inventory, host_name: str) -> bool:
    """Log in with the password (ticket) rather than the token?

    Yes when only a password is given, or when both are and a GPU on this host is a raw
    `pci:` address (only root@pam's own login may set those).
    """
    host = inv.host(host_name)
    if host.password is None:
        return False
    if host.token is None:
        return True
    return any(g.pci for g in inv.gpus.values() if g.host == host_name)


def _build(
    host_name: str,
    host: Host,
    node: str,
    *,
    url: str,
    token: tuple[str, str] | None,
    password: tuple[str, str] | None,
    default_pin: str | None = None,
    trust_env: bool = True,
) -> PveClient:
    session = requests.Session()
    session.trust_env = trust_env
    # With no auth of its own, requests takes ~/.netrc's entry for the host and its Basic
    # header replaces the client's PVEAPIToken one; an auth that keeps the headers as set
    # stops that (proxy and CA bundle variables still apply).
    session.auth = _headers_as_set
    pin = host.tls.fingerprint or (None if host.tls.ca_file else default_pin)
    verify: bool | str = True
    if pin:
        session.mount(url.rstrip("/") + "/", PinnedAdapter(pin))
    elif host.tls.ca_file is not None:
        ca_file = host.tls.ca_file.expanduser()
        if not ca_file.is_file():
            raise InputError(f"hosts.{host_name}.tls.ca_file: {ca_file} does not exist")
        verify = str(ca_file)
    return PveClient(
        url=url,
        host_name=host_name,
        node=node,
        session=session,
        token=token,
        password=password,
        secret_source=_secret_source(host, password is not None),
        pinned=pin,
        verify=verify,
    )


def _headers_as_set(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """The session's auth: the request as the client prepared it (its token header, or
    the ticket cookie and CSRF header of a password login)."""
    return request


def _secret_source(host: Host, password: bool) -> str:
    ref: SecretRef | None = host.password if password else host.token
    if ref is None:
        return "the simulator's own credentials"
    if ref.secret_env:
        return f"environment variable {ref.secret_env}"
    return f"file {ref.secret_file}"


def _connect_sim(
    host_name: str,
    host: Host,
    node: str,
    use_password: bool,
    inventory_file: Path | None,
    progress: Callable[[str], None] | None,
) -> PveClient:
    server = sim_server(host, inventory_file, progress=progress)
    token: tuple[str, str] | None = None
    password: tuple[str, str] | None = None
    if use_password and host.password is not None:
        user = host.password.user
        password = (user, _sim_secret(host.password, server.root_password, user == "root@pam"))
    elif host.token is not None:
        secret = _sim_secret(host.token, server.token_secret, host.token.id == server.token_id)
        token = (host.token.id, secret)
    else:
        token = (server.token_id, server.token_secret)
    return _build(
        host_name,
        host,
        node,
        url=server.url,
        token=token,
        password=password,
        default_pin=server.fingerprint,
        trust_env=False,
    )


def _sim_secret(ref: SecretRef, own: str, own_applies: bool) -> str:
    """The inventory's secret when it is set, else the simulator's own (if it fits)."""
    available = (ref.secret_env is not None and _env_set(ref.secret_env)) or (
        ref.secret_file is not None and ref.secret_file.expanduser().is_file()
    )
    if available or not own_applies:
        return read_secret(ref, "simulator credential")
    return own


def _env_set(name: str) -> bool:
    return bool(os.environ.get(name))


def sim_server(
    host: Host, inventory_file: Path | None = None, *, progress: Callable[[str], None] | None = None
) -> SimServer:
    """The running simulator for this process's state directory and the host's fixture
    (started on first use, stopped at exit: provision.sim.registry)."""
    fixture = resolve_fixture(host.sim_fixture, inventory_file)
    return registry.sim_server(sim_state_dir(), fixture, progress=progress)


def sim_ssh_host(host: Host, inventory_file: Path | None = None) -> Host:
    """A copy of a sim host entry whose ssh: settings point at the simulator's SFTP endpoint.

    The endpoint's host key is written to a known_hosts file in the simulator's state
    directory, so host key checking stays on for the simulator too.
    """
    server = sim_server(host, inventory_file)
    if server.sftp_port is None:
        raise InputError("the simulator runs without its SSH endpoint")
    known_hosts = Path(server.client_key_path).parent / "known_hosts.aihost"
    _write_known_hosts(known_hosts, server.known_hosts_line("127.0.0.1") + "\n")
    ssh = SshSettings(
        user="root",
        host="127.0.0.1",
        port=server.sftp_port,
        key=Path(server.client_key_path),
        known_hosts=known_hosts,
    )
    return host.model_copy(update={"ssh": ssh})


_known_hosts_lock = threading.Lock()


def _write_known_hosts(path: Path, line: str) -> None:
    """Make path hold line, replacing it whole: the VMs of a `vm up --all` read it from
    their own threads while one of them writes it (a simulator started by this command
    listens on a new port), and a file written in place is empty for a moment."""
    with _known_hosts_lock:
        if path.is_file() and path.read_text(encoding="utf-8") == line:
            return
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_text(line, encoding="utf-8")
        os.replace(temp, path)


def sim_ssh_target(host: Host, inventory_file: Path | None = None) -> SshTarget:
    """The SSH target of the simulator (provision.ssh.transport.SshTarget.from_host)."""
    return SshTarget.from_host(sim_ssh_host(host, inventory_file))
