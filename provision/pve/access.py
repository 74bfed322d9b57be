"""The caller's own rights, as Proxmox computes them."""

from __future__ import annotations

from typing import Any

from provision.pve.api import Api


def effective_permissions(api: Api) -> dict[str, dict[str, Any]]:
    """GET /access/permissions: {ACL path: {privilege: propagate}} for the caller."""
    return dict(api.get("/access/permissions") or {})
