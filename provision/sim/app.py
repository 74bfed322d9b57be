"""The simulator's request handling, independent of sockets: authentication, faults,
parameter validation (always on), routing, privileges, and the state transaction around
each request."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from provision.sim import faults
from provision.sim.auth import Authenticator, AuthFailure, Identity
from provision.sim.context import Ctx, compile_routes
from provision.sim.fixture import build_world, load_fixture
from provision.sim.guest_disk import power_off_bakes
from provision.sim.http import ApiFailure, failure_payload, param_fail, parse_request
from provision.sim.lifecycle import apply_task
from provision.sim.params_check import canonical, sim_schema
from provision.sim.params_routes import DECLARED
from provision.sim.perms import check_endpoint
from provision.sim.pvestatd import catch_up
from provision.sim.routes_agent import ROUTES as AGENT
from provision.sim.routes_cluster import ROUTES as CLUSTER
from provision.sim.routes_dirmap import ROUTES as DIRMAP
from provision.sim.routes_mapping import ROUTES as MAPPING
from provision.sim.routes_power import ROUTES as POWER
from provision.sim.routes_qemu import ROUTES as QEMU
from provision.sim.routes_storage import ROUTES as STORAGE
from provision.sim.state import StateStore, World
from provision.sim.tasks import DEFAULT_DURATIONS

Validator = Callable[[str, str, dict[str, Any]], list[str]]
ROUTES = compile_routes(CLUSTER + MAPPING + DIRMAP + STORAGE + QEMU + POWER + AGENT)
PREFIX = "/api2/json"
_SECRET_KEYS = ("password", "secret", "ticket", "token", "cipassword", "otp", "input-data")


def find_route(method: str, sub: str) -> tuple[str, Any, re.Match[str]] | None:
    """(template, handler, match) of the route serving method + path below /api2/json."""
    for route_method, template, pattern, handler in ROUTES:
        match = pattern.fullmatch(sub)
        if match and route_method == method:
            return template, handler, match
    return None


@dataclass
class Reply:
    """What to send back: a JSON reply, or a dropped connection / hang for faults."""

    status: int
    payload: dict[str, Any] | None  # None: no body (pveproxy's 401 from auth_handler)
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # None, "drop", "hang"
    delay: float = 0.0


def redact(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters with secret values replaced (for the request log)."""
    return {
        k: ("<redacted>" if any(s in k.lower() for s in _SECRET_KEYS) else v)
        for k, v in params.items()
    }


class SimApp:
    """Serves API requests against the world in a state dir (see provision.sim.server)."""

    def __init__(
        self,
        state_dir: Path,
        fixture: Path | None = None,
        *,
        durations: dict[str, float] | None = None,
        validator: Validator | None = None,
        clock: Callable[[], float] = time.time,
        auth_delay: float = 3.0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.store = StateStore(self.state_dir)
        self.fixture = load_fixture(fixture)
        self.ctor_durations = durations
        self.validator = validator
        self.clock = clock
        self.auth_delay = auth_delay
        self._log: list[dict[str, Any]] = []
        self._schema_violations: list[str] = []
        self._mem = threading.Lock()
        with self.store.locked():
            if not self.store.exists():
                self.store.save(self._fresh_world())
        access = self.fixture.get("access") or {}
        ids = list(access.get("tokens", {})) + list(access.get("users", {}))
        self.secrets = self.store.secrets(ids)
        self.auth = Authenticator(self.secrets, clock)

    def _fresh_world(self) -> World:
        world = build_world(self.fixture, self.state_dir, self.clock())
        world["faults"] = [faults.validate_fault(f) for f in world["faults"]]
        world["duration_overrides"] = {}
        return world

    def reset(self) -> None:
        """Back to the fixture's world (storage files too); clears logs and violations."""
        with self.store.locked():
            self.store.save(self._fresh_world())
        with self._mem:
            self._log.clear()
            self._schema_violations.clear()

    def durations(self, world: World) -> dict[str, float]:
        """Task durations: defaults (zeros when the constructor got a dict), the fixture's,
        the constructor's, then those POSTed to /_sim/durations."""
        base = (
            dict(DEFAULT_DURATIONS)
            if self.ctor_durations is None
            else dict.fromkeys(DEFAULT_DURATIONS, 0.0)
        )  # noqa: E501
        return {
            **base,
            **world.get("durations", {}),
            **(self.ctor_durations or {}),
            **world.get("duration_overrides", {}),
        }

    def request_log(self, since: int = 0) -> list[dict[str, Any]]:
        """Requests served so far (index since onwards)."""
        with self._mem:
            return [dict(e) for e in self._log[since:]]

    def schema_violations(self) -> list[str]:
        """Requests the schema validator refused, and internal errors (this process only)."""
        with self._mem:
            return list(self._schema_violations)

    def violations(self) -> list[str]:
        """Schema violations seen plus the world's GPU-invariant violations."""
        with self.store.locked():
            recorded = list(self.store.load().get("violations", []))
        with self._mem:
            return list(self._schema_violations) + recorded

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one /api2/json request."""
        started = time.perf_counter()
        identity: list[Identity] = []
        path, params = target, dict[str, Any]()
        try:
            path, params, files = parse_request(method, target, headers, body)
            if not (path == PREFIX or path.startswith(PREFIX + "/")):
                raise ApiFailure(501, f"Method '{method} {path}' not implemented")
            try:
                with self.store.transaction() as world:
                    reply = self._serve(
                        world, method, path[len(PREFIX) :] or "/", params, files, headers, identity
                    )
            except ApiFailure as failure:
                bare = isinstance(failure, AuthFailure)  # no body: pve-http-server AnyEvent.pm
                reply = Reply(
                    failure.status, None if bare else failure_payload(failure), failure.message
                )
                reply.delay = self.auth_delay if failure.status == 401 else failure.delay
        except (ValueError, UnicodeDecodeError) as exc:
            reply = Reply(
                400, failure_payload(param_fail({"": str(exc)})), "Parameter verification failed."
            )
        except Exception as exc:  # noqa: BLE001 - a simulator bug answers 500 and is recorded
            text = f"internal simulator error: {type(exc).__name__}: {exc}"
            with self._mem:
                self._schema_violations.append(f"{method} {path}: {text}")
            reply = Reply(500, {"data": None, "message": text + "\n"}, text)
        with self._mem:
            self._log.append(
                {
                    "n": len(self._log),
                    "time": time.time(),
                    "method": method,
                    "path": path,
                    "params": redact(params),
                    "status": reply.status if reply.action is None else reply.action,  # noqa: E501
                    "duration": round(time.perf_counter() - started, 6),
                    "auth": identity[0].auth_id if identity else None,
                }
            )
        return reply

    def _serve(
        self,
        world: World,
        method: str,
        sub: str,
        params: dict[str, Any],
        files: dict[str, tuple[str, bytes]],
        headers: dict[str, str],
        identity: list[Identity],
    ) -> Reply:
        now = self.clock()
        catch_up(world, now, self.durations(world)["pvestatd"], apply_task)
        power_off_bakes(world, now, self.durations(world))
        fault = faults.request_fault(world, method, sub)
        if fault is not None:
            if fault["kind"] == "http500":
                msg = str(fault.get("message") or faults.DEFAULT_MESSAGE)
                return Reply(500, {"data": None, "message": msg + "\n"}, msg)
            return Reply(0, {}, action=fault["kind"], delay=float(fault.get("seconds", 0)))
        if method == "POST" and sub == "/access/ticket":
            self._validate(method, sub, params)
            data = self.auth.login(
                world["access"],
                str(params.get("username", "")),
                str(params.get("password", "")),
                str(params.get("realm", "")),
            )
            return Reply(200, {"data": data})
        who = self.auth.authenticate(world["access"], method, headers, sub)
        identity.append(who)
        found = find_route(method, sub)
        if found is None:  # pve-manager PVE/HTTPServer.pm rest_handler: the relative URI
            raise ApiFailure(501, f"Method '{method} {sub}' not implemented")
        template, handler, match = found
        _require_declared(method, template)
        merged = canonical(method, template, {**params, **match.groupdict()})
        # rest_handler: check_api2_permissions before RESTHandler::handle validates
        check_endpoint(method, template, who, merged)
        self._validate(method, sub, {**params, **{k: v[0] for k, v in files.items()}})
        ctx = Ctx(world, now, who, merged, self.state_dir, self.durations(world), files)
        return Reply(200, {"data": handler(ctx)})

    def _validate(self, method: str, sub: str, params: dict[str, Any]) -> None:
        """400 for what pve-common's JSONSchema::validate refuses: the simulator's own
        declarations always (provision.sim.params_routes), plus the validator given
        (tests: Proxmox's apidoc.json), every refusal recorded."""
        path = PREFIX + "/".join(quote(seg, safe="") for seg in sub.split("/"))
        problems = sim_schema().validate(method, path, params)
        if self.validator is not None:
            problems += self.validator(method, path, params)
        problems = list(dict.fromkeys(problems))
        if not problems:
            return
        with self._mem:
            self._schema_violations += [f"{method} {sub}: {p}" for p in problems]
        errors = {}
        for problem in problems:
            key, sep, msg = problem.partition(": ")
            if not sep:
                errors[""] = problem
            elif "." in key:  # a property-string sub-key, reported as Proxmox does
                top = key.partition(".")[0]
                errors[top] = errors.get(top, "invalid format - format error\n") + f"{problem}\n"
            else:
                errors[key] = msg
        raise param_fail(errors)


def _require_declared(method: str, template: str) -> None:
    """A served route must have its parameters declared: else a named simulator bug."""
    if (method, template) not in DECLARED:
        raise LookupError(
            f"{method} {template} is served but has no parameter declaration in "
            "provision/sim/params_routes.py"
        )
