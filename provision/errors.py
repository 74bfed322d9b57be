"""One exception hierarchy; each error carries the exit code the CLI returns.

Exit codes: 0 ok, 1 bug (unexpected error), 2 bad input (inventory, arguments,
a model that does not fit, missing permissions found by pre-flight), 3 Proxmox /
API / SSH error, 4 conflict (GPU held by another VM, lease taken, VM locked),
5 timeout (a wait ran out).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BUG = 1
EXIT_INPUT = 2
EXIT_API = 3
EXIT_CONFLICT = 4
EXIT_TIMEOUT = 5


class AihostError(Exception):
    """Base of every error aihost reports to the user as one line."""

    exit_code = EXIT_BUG
    # True when the command already printed its result as JSON (e.g. a failed check's
    # report): the CLI then prints no second JSON document for the error.
    reported = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class InputError(AihostError):
    """Bad input: arguments, inventory content, unknown names."""

    exit_code = EXIT_INPUT


class InventoryError(InputError):
    """An inventory problem located at a file and line."""

    def __init__(
        self, message: str, *, file: str, line: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return text


class ModelFitError(InputError):
    """A model does not fit the VRAM it is given."""


class PreflightError(InputError):
    """Pre-flight found missing permissions or storage content before any write."""


class ApiError(AihostError):
    """Proxmox API, TLS, connection or SSH failure."""

    exit_code = EXIT_API

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        hint: str | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.errors = errors or {}


class AuthError(ApiError):
    """401: the credentials were refused."""


class PermissionDenied(ApiError):
    """403: the token or user lacks a privilege."""


class TaskFailed(ApiError):
    """A Proxmox task ended with an error exit status."""

    def __init__(
        self,
        message: str,
        *,
        upid: str,
        exitstatus: str,
        log_tail: list[str],
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.upid = upid
        self.exitstatus = exitstatus
        self.log_tail = log_tail


class SSHError(ApiError):
    """SSH/SFTP failure, including an unknown or changed host key."""


class GuestError(ApiError):
    """The guest did not prove it works (agent, driver, runtime)."""


class ConflictError(AihostError):
    """Someone else holds what we need: a GPU, a lease, a lock."""

    exit_code = EXIT_CONFLICT


class WaitTimeout(AihostError):
    """A bounded wait ran out."""

    exit_code = EXIT_TIMEOUT
