"""Pre-flight of `aihost template bake`: every privilege and storage content type the bake
needs, checked before its first write, as `vm up`'s pre-flight does for a VM."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provision.errors import PreflightError
from provision.inventory.model import Recipe
from provision.plan.model import Change
from provision.preflight.permissions import Requirement, missing, requirement
from provision.preflight.run import (
    PreflightReport,
    change_requirements,
    report_lines,
    storage_gaps,
)
from provision.pve.access import effective_permissions
from provision.pve.session import Session

NEW = ""  # the bake VM's id is not known yet: the grant must cover /vms


def bake_requirements(
    recipe: Recipe,
    config: dict[str, Any],
    *,
    storage: Any,
    clone_of: int | None,
    iso: bool,
    replacing: list[int],
) -> list[Requirement]:
    """What the bake's calls need, in the order it makes them."""
    needs = [requirement("disk-space", "the bake VM's disks", storage=storage.disks)]
    if clone_of is not None:
        needs += [
            requirement("clone", "clone the recipe's template", vmid=clone_of),
            requirement("clone-allocate", "create the bake VM", newid=NEW),
        ]
    else:
        needs.append(requirement("create", "create the bake VM", vmid=NEW))
    for key, value in sorted(config.items()):
        needs += change_requirements(Change(key, None, value), NEW, create=clone_of is None)
    # the claim (provision.vmops.bake_claim) writes the bake VMs' descriptions
    needs += change_requirements(Change("description", None, "claim"), NEW, create=False)
    cloud = {"ide2": f"{storage.iso}:iso/x.iso,media=cdrom"} if iso else {"cicustom": "user=x"}
    for key, value in cloud.items():
        needs += change_requirements(Change(key, None, value), NEW, create=False)
    if iso:
        needs.append(requirement("upload-iso", "upload the bake's ISO", storage=storage.iso))
        needs.append(requirement("remove-volume", "remove the bake's ISO", storage=storage.iso))
    needs += [
        requirement("resize", "grow the bake VM's disk", vmid=NEW),
        requirement("power", "start the bake VM", vmid=NEW),
        requirement("agent-file-read", "read the bake's state file", vmid=NEW),
        requirement("make-template", "convert the bake VM to a template", vmid=NEW),
    ]
    for vmid in replacing:
        needs.append(requirement("destroy", f"remove the old template {vmid}", vmid=vmid))
    return needs


def check_bake(
    session: Session,
    recipe: Recipe,
    needs: list[Requirement],
    contents: dict[str, set[str]],
    report: Callable[[str], None],
) -> None:
    """Raise PreflightError naming every gap (privileges, storage content) at once."""
    client = session.client(recipe.host)
    result = PreflightReport(recipe.host, client.auth_id)
    if not client.is_root_ticket:
        result.privileges = missing(effective_permissions(client), needs)
    result.storage = storage_gaps(session, recipe.host, contents)
    if result.ok:
        return
    for line in report_lines([result]):
        report(line)
    problems = result.problems()
    raise PreflightError(
        f"pre-flight found {len(problems)} problem(s), nothing was changed: {problems[0]}"
        + (" (and more above)" if len(problems) > 1 else "")
    )
