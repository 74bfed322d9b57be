"""Where the CLI finds Session (it lives in provision.pve.session, below every operation)."""

from provision.pve.session import Progress, Session

__all__ = ["Progress", "Session"]
