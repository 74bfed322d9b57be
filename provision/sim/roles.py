"""Proxmox's built-in roles, built the way pve-access-control builds them.

pve-access-control `src/PVE/AccessControl.pm`: `$privgroups` lists each privilege
category's root, admin, user and audit privileges, and `create_roles` derives the
roles: PVE<Cat>Admin = admin+user+audit, PVE<Cat>User = user+audit (only for categories
with user privileges), PVEAuditor = every audit privilege, PVEAdmin = every
admin/user/audit privilege except Mapping.Modify, PVETemplateUser = VM.Clone+VM.Audit,
Administrator = every privilege, NoAccess = none. So PVEVMAdmin carries no SDN.Use:
that is in PVESDNUser (and PVESDNAdmin, PVEAdmin, Administrator).
"""

from __future__ import annotations

PRIVGROUPS: dict[str, dict[str, list[str]]] = {
    "VM": {
        "root": [],
        "admin": [
            "VM.Config.Disk",
            "VM.Config.CPU",
            "VM.Config.Memory",
            "VM.Config.Network",
            "VM.Config.HWType",
            "VM.Config.Options",
            "VM.Allocate",
            "VM.Clone",
            "VM.GuestAgent.Unrestricted",
            "VM.Migrate",
            "VM.Replicate",
            "VM.Snapshot",
            "VM.Snapshot.Rollback",
        ],
        "user": [
            "VM.Config.CDROM",
            "VM.Config.Cloudinit",
            "VM.Console",
            "VM.Backup",
            "VM.GuestAgent.FileRead",
            "VM.GuestAgent.FileSystemMgmt",
            "VM.GuestAgent.FileWrite",
            "VM.PowerMgmt",
        ],
        "audit": ["VM.Audit", "VM.GuestAgent.Audit"],
    },
    "Sys": {
        "root": ["Sys.PowerMgmt", "Sys.Modify", "Sys.Incoming", "Sys.AccessNetwork"],
        "admin": ["Sys.Console", "Sys.Syslog"],
        "user": [],
        "audit": ["Sys.Audit"],
    },
    "Datastore": {
        "root": [],
        "admin": ["Datastore.Allocate", "Datastore.AllocateTemplate"],
        "user": ["Datastore.AllocateSpace"],
        "audit": ["Datastore.Audit"],
    },
    "SDN": {
        "root": [],
        "admin": ["SDN.Allocate", "SDN.Audit"],
        "user": ["SDN.Use"],
        "audit": ["SDN.Audit"],
    },
    "User": {
        "root": ["Realm.Allocate"],
        "admin": ["User.Modify", "Group.Allocate", "Realm.AllocateUser"],
        "user": [],
        "audit": [],
    },
    "Pool": {
        "root": [],
        "admin": ["Pool.Allocate"],
        "user": ["Pool.Audit"],
        "audit": ["Pool.Audit"],
    },
    "Mapping": {
        "root": [],
        "admin": ["Mapping.Modify"],
        "user": ["Mapping.Use"],
        "audit": ["Mapping.Audit"],
    },
}


def _build() -> dict[str, frozenset[str]]:
    everything = {"Permissions.Modify"}
    roles: dict[str, set[str]] = {"NoAccess": set(), "PVEAdmin": set(), "PVEAuditor": set()}
    for cat, groups in PRIVGROUPS.items():
        everything.update(groups["root"], groups["admin"], groups["user"], groups["audit"])
        granted = groups["admin"] + groups["user"] + groups["audit"]
        roles.setdefault(f"PVE{cat}Admin", set()).update(granted)
        roles["PVEAdmin"].update(granted)
        if groups["user"]:
            roles.setdefault(f"PVE{cat}User", set()).update(groups["user"] + groups["audit"])
        roles["PVEAuditor"].update(groups["audit"])
    roles["PVEAdmin"].discard("Mapping.Modify")
    roles["PVETemplateUser"] = {"VM.Clone", "VM.Audit"}
    roles["Administrator"] = everything
    return {name: frozenset(privs) for name, privs in roles.items()}


ROLES: dict[str, frozenset[str]] = _build()


def role_privs(name: str) -> frozenset[str]:
    """The privileges of a built-in role; ValueError for a name Proxmox does not have."""
    try:
        return ROLES[name]
    except KeyError:
        raise ValueError(f"role '{name}' does not exist") from None
