"""The privilege check of each endpoint the simulator serves, written the way the real
schema's `permissions` entries are (tests/sim/test_permissions_table.py compares this
table with apidoc.json), and their evaluation for an identity."""

from __future__ import annotations

from typing import Any

from provision.sim.auth import Identity
from provision.sim.http import ApiFailure

_VM_CONFIG = [
    "VM.Config.Disk",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.HWType",
    "VM.Config.Options",
    "VM.Config.Cloudinit",
]
_ALL: dict[str, Any] = {"user": "all"}
_Q = "/nodes/{node}/qemu/{vmid}"
_STORAGE = "/nodes/{node}/storage/{storage}"
_STORAGE_READ = {
    "check": [
        "perm",
        "/storage/{storage}",
        ["Datastore.Audit", "Datastore.AllocateSpace"],
        "any",
        1,
    ]
}  # noqa: E501
_POWER = {"check": ["perm", "/vms/{vmid}", ["VM.PowerMgmt"]]}
_AUDIT = {"check": ["perm", "/vms/{vmid}", ["VM.Audit"]]}
_AGENT_READ = {
    "check": [
        "perm",
        "/vms/{vmid}",
        ["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"],
        "any",
        1,
    ]
}  # noqa: E501
_AGENT_EXEC = {"check": ["perm", "/vms/{vmid}", ["VM.GuestAgent.Unrestricted"]]}

PERMISSIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/version"): _ALL,
    ("GET", "/nodes"): _ALL,
    ("GET", "/nodes/{node}/status"): {"check": ["perm", "/nodes/{node}", ["Sys.Audit"]]},
    ("GET", "/cluster/resources"): _ALL,
    ("GET", "/cluster/nextid"): _ALL,
    ("GET", "/cluster/status"): {"check": ["perm", "/", ["Sys.Audit"]]},
    ("GET", "/cluster/mapping/pci"): _ALL,
    ("POST", "/cluster/mapping/pci"): {"check": ["perm", "/mapping/pci", ["Mapping.Modify"]]},
    ("GET", "/cluster/mapping/pci/{id}"): {
        "check": [
            "or",
            ["perm", "/mapping/pci/{id}", ["Mapping.Use"]],
            ["perm", "/mapping/pci/{id}", ["Mapping.Modify"]],
            ["perm", "/mapping/pci/{id}", ["Mapping.Audit"]],
        ]
    },
    ("PUT", "/cluster/mapping/pci/{id}"): {
        "check": ["perm", "/mapping/pci/{id}", ["Mapping.Modify"]]
    },  # noqa: E501
    ("DELETE", "/cluster/mapping/pci/{id}"): {
        "check": ["perm", "/mapping/pci", ["Mapping.Modify"]]
    },  # noqa: E501
    # pve-manager PVE/API2/Cluster/Mapping/Dir.pm
    ("GET", "/cluster/mapping/dir"): _ALL,
    ("POST", "/cluster/mapping/dir"): {"check": ["perm", "/mapping/dir", ["Mapping.Modify"]]},
    ("GET", "/cluster/mapping/dir/{id}"): {
        "check": [
            "or",
            ["perm", "/mapping/dir/{id}", ["Mapping.Use"]],
            ["perm", "/mapping/dir/{id}", ["Mapping.Modify"]],
            ["perm", "/mapping/dir/{id}", ["Mapping.Audit"]],
        ]
    },
    ("PUT", "/cluster/mapping/dir/{id}"): {
        "check": ["perm", "/mapping/dir/{id}", ["Mapping.Modify"]]
    },
    ("DELETE", "/cluster/mapping/dir/{id}"): {
        "check": ["perm", "/mapping/dir", ["Mapping.Modify"]]
    },
    ("GET", "/nodes/{node}/config"): {"check": ["perm", "/", ["Sys.Audit"]]},
    ("PUT", "/nodes/{node}/config"): {"check": ["perm", "/", ["Sys.Modify"]]},
    ("GET", "/nodes/{node}/hardware/pci"): {
        "check": ["perm", "/", ["Sys.Audit", "Sys.Modify"], "any", 1]
    },  # noqa: E501
    ("GET", "/storage/{storage}"): {
        "check": ["perm", "/storage/{storage}", ["Datastore.Allocate"]]
    },
    ("GET", "/nodes/{node}/storage"): _ALL,
    ("GET", f"{_STORAGE}/status"): _STORAGE_READ,
    ("GET", f"{_STORAGE}/content"): _STORAGE_READ,
    ("DELETE", f"{_STORAGE}/content/{{volume}}"): _ALL,
    ("POST", f"{_STORAGE}/upload"): {
        "check": ["perm", "/storage/{storage}", ["Datastore.AllocateTemplate"]]
    },  # noqa: E501
    ("GET", "/nodes/{node}/qemu"): _ALL,
    ("POST", "/nodes/{node}/qemu"): _ALL,
    ("DELETE", _Q): {"check": ["perm", "/vms/{vmid}", ["VM.Allocate"]]},
    ("POST", f"{_Q}/clone"): {
        "check": [
            "and",
            ["perm", "/vms/{vmid}", ["VM.Clone"]],
            [
                "or",
                ["perm", "/vms/{newid}", ["VM.Allocate"]],
                ["perm", "/pool/{pool}", ["VM.Allocate"], "require_param", "pool"],
            ],
        ]
    },
    ("POST", f"{_Q}/template"): {"check": ["perm", "/vms/{vmid}", ["VM.Allocate"]]},
    ("GET", f"{_Q}/config"): _AUDIT,
    ("POST", f"{_Q}/config"): {"check": ["perm", "/vms/{vmid}", _VM_CONFIG, "any", 1]},
    ("PUT", f"{_Q}/config"): {"check": ["perm", "/vms/{vmid}", _VM_CONFIG, "any", 1]},
    ("GET", f"{_Q}/pending"): _AUDIT,
    ("GET", f"{_Q}/status/current"): _AUDIT,
    ("POST", f"{_Q}/status/start"): _POWER,
    ("POST", f"{_Q}/status/stop"): _POWER,
    ("POST", f"{_Q}/status/shutdown"): _POWER,
    ("POST", f"{_Q}/status/reboot"): _POWER,
    ("PUT", f"{_Q}/resize"): {"check": ["perm", "/vms/{vmid}", ["VM.Config.Disk"]]},
    ("GET", f"{_Q}/cloudinit/dump"): _AUDIT,
    ("POST", f"{_Q}/agent/ping"): _AGENT_READ,
    ("POST", f"{_Q}/agent/exec"): _AGENT_EXEC,
    ("GET", f"{_Q}/agent/exec-status"): _AGENT_EXEC,
    ("GET", f"{_Q}/agent/network-get-interfaces"): _AGENT_READ,
    ("GET", "/nodes/{node}/tasks"): _ALL,
    ("GET", f"{_Q}/agent/file-read"): {
        "check": [
            "perm",
            "/vms/{vmid}",
            ["VM.GuestAgent.FileRead", "VM.GuestAgent.Unrestricted"],
            "any",
            1,
        ]
    },
    ("GET", "/nodes/{node}/tasks/{upid}/status"): _ALL,
    ("GET", "/nodes/{node}/tasks/{upid}/log"): _ALL,
    ("POST", "/access/ticket"): {"user": "world"},
    ("GET", "/access/permissions"): _ALL,
}


def _fill(template: str, params: dict[str, Any]) -> str:
    out = template
    for key, value in params.items():
        out = out.replace("{" + key + "}", str(value))
    return out


def denied(path: str, privs: list[str], any_of: bool = False) -> ApiFailure:
    """HTTP 403 as Proxmox words it: "Permission check failed (/vms/100, VM.PowerMgmt)"."""
    return ApiFailure(
        403, f"Permission check failed ({path}, {'|'.join(privs) if any_of else privs[0]})"
    )  # noqa: E501


def require(identity: Identity, path: str, privs: list[str], any_of: bool = False) -> None:
    """Raise 403 unless identity holds the privileges (all, or any with any_of) on path."""
    held = identity.privileges(path)
    if any_of and held & set(privs):
        return
    missing = [p for p in privs if p not in held]
    if not any_of and not missing:
        return
    raise denied(path, privs if any_of else missing, any_of)


def evaluate(expr: list[Any], identity: Identity, params: dict[str, Any]) -> None:
    """Evaluate a schema-style check expression; raise 403 when it fails."""
    kind = expr[0]
    if kind == "perm":
        opts = dict(zip(expr[3::2], expr[4::2], strict=False))
        if "require_param" in opts and opts["require_param"] not in params:
            raise ApiFailure(403, "Permission check failed")
        require(identity, _fill(expr[1], params), list(expr[2]), bool(opts.get("any")))
    elif kind == "and":
        for sub in expr[1:]:
            evaluate(sub, identity, params)
    elif kind == "or":
        for sub in expr[1:]:
            try:
                evaluate(sub, identity, params)
                return
            except ApiFailure:
                continue
        raise ApiFailure(403, "Permission check failed")
    else:
        raise ValueError(f"unknown permission check {kind!r}")


def check_endpoint(method: str, template: str, identity: Identity, params: dict[str, Any]) -> None:
    """Apply the endpoint's declared check (endpoints with user=all check inside)."""
    spec = PERMISSIONS[(method, template)]
    if "check" in spec:
        evaluate(spec["check"], identity, params)
