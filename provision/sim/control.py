"""The control API outside /api2/json (no auth; the server answers loopback peers only):

GET    /_sim/requests[?since=N]  request log (secrets redacted)
GET    /_sim/faults              active faults;  POST one fault, a list, or {"faults": [...]}
DELETE /_sim/faults              remove every fault (and their counters)
POST   /_sim/reset               back to the fixture's world
GET    /_sim/violations          schema + GPU-invariant violations
GET    /_sim/durations           effective task durations;  POST {"qmstart": 3, ...}
                                 ("pvestatd": seconds between status broadcasts that
                                 /cluster/resources shows; 0 = every request)
"""

from __future__ import annotations

import json
from typing import Any

from provision.sim.app import SimApp
from provision.sim.faults import validate_fault
from provision.sim.http import parse_request


def handle_control(
    app: SimApp, method: str, target: str, headers: dict[str, str], body: bytes
) -> tuple[int, Any]:  # noqa: E501
    """(HTTP status, JSON body) for a control request."""
    path, params, _files = parse_request(method, target, headers, b"")
    try:
        payload: Any = json.loads(body.decode("utf-8")) if body else {}
    except ValueError as exc:
        return 400, {"error": f"body is not JSON: {exc}"}
    key = (method, path.rstrip("/"))
    if key == ("GET", "/_sim/requests"):
        return 200, {"data": app.request_log(int(params.get("since", 0)))}
    if key == ("GET", "/_sim/violations"):
        return 200, {"data": app.violations()}
    if key == ("POST", "/_sim/reset"):
        app.reset()
        return 200, {"data": None}
    if key[1] == "/_sim/faults":
        return _faults(app, method, payload)
    if key[1] == "/_sim/durations":
        if method == "POST":
            if not isinstance(payload, dict):
                return 400, {"error": "durations must be an object {task type: seconds}"}
            with app.store.transaction() as world:
                world.setdefault("duration_overrides", {}).update(
                    {str(k): float(v) for k, v in payload.items()}
                )
        with app.store.locked():
            return 200, {"data": app.durations(app.store.load())}
    return 404, {"error": f"no control endpoint {method} {path}"}


def _faults(app: SimApp, method: str, payload: Any) -> tuple[int, Any]:
    with app.store.transaction() as world:
        if method == "DELETE":
            world["faults"], world["fault_hits"] = [], {}
        elif method == "POST":
            items = payload.get("faults", payload) if isinstance(payload, dict) else payload
            items = items if isinstance(items, list) else [items]
            try:
                world["faults"] += [validate_fault(f) for f in items]
            except (ValueError, TypeError) as exc:
                return 400, {"error": str(exc)}
        elif method != "GET":
            return 405, {"error": f"{method} not allowed on /_sim/faults"}
        return 200, {"data": list(world["faults"])}
