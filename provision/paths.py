"""Where aihost finds its shipped files and keeps its state."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def builtin_templates_dir() -> Path:
    """The cloud-init templates: inside the wheel, or the source tree's templates/."""
    shipped = PACKAGE_DIR / "templates"
    if shipped.is_dir():
        return shipped
    return PACKAGE_DIR.parent / "templates"


def state_dir() -> Path:
    """The user's state directory (AIHOST_STATE_DIR overrides; platformdirs otherwise)."""
    override = os.environ.get("AIHOST_STATE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_state_dir

    return Path(user_state_dir("aihost", appauthor=False))


def cache_dir() -> Path:
    """Where aihost keeps what it can always rebuild, such as compiled templates
    (AIHOST_CACHE_DIR overrides; platformdirs' user cache directory otherwise).

    Kept apart from the state directory, as the XDG layout has it: a cache holds nothing
    of a world (another AIHOST_STATE_DIR, a reset simulator), so every state dir shares it.
    """
    override = os.environ.get("AIHOST_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("aihost", appauthor=False))


def sim_state_dir() -> Path:
    """The state of the built-in simulated Proxmox used by `api: sim` hosts."""
    return state_dir() / "sim"
