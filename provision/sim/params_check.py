"""The simulator's own parameter checks, on in every mode: its declarations
(provision.sim.params_routes) and formats (provision.sim.params_formats) as an ApiSchema,
and the values its handlers get once a request passed them."""

from __future__ import annotations

import functools
import re
from typing import Any

from provision.sim.apischema import ApiSchema
from provision.sim.params_formats import SIM_FORMATS
from provision.sim.params_routes import DECLARED


@functools.cache
def sim_schema() -> ApiSchema:
    """The simulator's own request validator: its declarations and formats as an ApiSchema
    (always on, in every mode; needs nothing outside the project)."""
    tree: dict[str, dict[str, Any]] = {}
    for (method, template), entries in DECLARED.items():
        node = tree.setdefault(template, {"path": template, "info": {}})
        node["info"][method] = {
            "parameters": {"type": "object", "additionalProperties": 0, "properties": entries}
        }
    return ApiSchema(list(tree.values()), SIM_FORMATS, name="simulator")


def canonical(method: str, template: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters as the simulator's handlers use them.

    pve-common's regexes end in `$`, which also matches before a final newline, so
    Proxmox's validator accepts `vmid=150\\n` or a node `pve1\\n`. For path parameters
    and integers valid only by that rule the simulator drops the newline, so its world
    never holds a VM "150\\n" (its own choice: Proxmox would carry the newline on into
    file names). VM option values keep it and are refused as qemu-server refuses them
    (provision.sim.vmconfig.line_feed_error).
    """
    entries = DECLARED.get((method, template), {})
    in_path = set(re.findall(r"\{(\w+)\}", template))
    out = dict(params)
    for key, value in params.items():
        entry = entries.get(key) or {}
        if not isinstance(value, str) or not value.endswith("\n"):
            continue
        if key in in_path or entry.get("type") in ("integer", "number"):
            out[key] = value[:-1]
    return out
