"""Compare what a plan needs with the token's effective rights (GET /access/permissions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.preflight.privileges import CALLS


@dataclass(frozen=True)
class Requirement:
    """A privilege (any of several) needed on an ACL path, and why."""

    acl: str
    any_of: tuple[str, ...]
    why: str


def requirement(call: str, why: str, **params: object) -> Requirement:
    """The Requirement for a CALLS entry with its path parameters filled in.

    An empty parameter (a VM whose id Proxmox has not given yet) leaves the parent path,
    e.g. /vms, where a propagating grant covers whichever id the VM gets.
    """
    need = CALLS[call]
    acl = need.acl.format(**params).rstrip("/") or "/"  # a VM without an id yet: /vms
    return Requirement(acl, need.any_of, why)


def granted(permissions: dict[str, dict[str, Any]], acl: str, privilege: str) -> bool:
    """True when privilege holds on acl: set there, or set on an ancestor with propagate."""
    exact = permissions.get(acl, {})
    if privilege in exact:
        return True
    parts = acl.rstrip("/").split("/")
    for cut in range(len(parts) - 1, 0, -1):
        ancestor = "/".join(parts[:cut]) or "/"
        if _propagates(permissions.get(ancestor, {}).get(privilege)):
            return True
    return False


def _propagates(flag: Any) -> bool:
    return flag in (1, "1", True)


def missing(permissions: dict[str, dict[str, Any]], needs: list[Requirement]) -> list[Requirement]:
    """The requirements not met, each once."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    result = []
    for need in needs:
        key = (need.acl, need.any_of)
        if key in seen:
            continue
        seen.add(key)
        if not any(granted(permissions, need.acl, p) for p in need.any_of):
            result.append(need)
    return result


# Proxmox's built-in user roles (pve-access-control AccessControl.pm create_roles: a
# category's user and audit privileges); a gap they cover is granted with the role itself.
# tests/unit/test_preflight_keys.py keeps these equal to the simulator's role table.
BUILTIN_ROLES: dict[str, frozenset[str]] = {
    "PVESDNUser": frozenset({"SDN.Use", "SDN.Audit"}),
    "PVEMappingUser": frozenset({"Mapping.Use", "Mapping.Audit"}),
    "PVEDatastoreUser": frozenset({"Datastore.AllocateSpace", "Datastore.Audit"}),
}


def builtin_role(privs: list[str]) -> str | None:
    """The smallest built-in role that carries every one of privs, if any."""
    fits = [(len(p), name) for name, p in BUILTIN_ROLES.items() if set(privs) <= p]
    return min(fits)[1] if fits else None


def grant_commands(auth_id: str, gaps: list[Requirement]) -> list[str]:
    """pveum commands that grant the missing privileges (a role per ACL path: a built-in
    one such as PVESDNUser when it covers them, else one aihost names)."""
    by_path: dict[str, list[str]] = {}
    for gap in gaps:
        by_path.setdefault(gap.acl, [])
        if gap.any_of[0] not in by_path[gap.acl]:
            by_path[gap.acl].append(gap.any_of[0])
    target = f"--tokens '{auth_id}'" if "!" in auth_id else f"--users '{auth_id}'"
    commands = []
    for index, (path, privs) in enumerate(sorted(by_path.items())):
        role = builtin_role(privs)
        if role is None:
            role = f"AihostNeeds{index + 1}"
            commands.append(f'pveum role add {role} --privs "{" ".join(privs)}"')
        commands.append(f"pveum acl modify {path} {target} --roles {role}")
    if "!" in auth_id:
        user = auth_id.split("!", 1)[0]
        commands.append(
            f"(a token with privilege separation also needs these on its user "
            f"{user}: repeat the acl commands with --users '{user}')"
        )
    return commands
