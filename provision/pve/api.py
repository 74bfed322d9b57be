"""The narrow transport every Proxmox handle speaks through (PveClient, or a test double)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Progress = Callable[[str], None]


class Api(Protocol):
    """Requests to one Proxmox VE API, answers as its `data` (errors as ApiError)."""

    def get(self, path: str, **params: Any) -> Any:
        """GET path."""
        ...

    def post(self, path: str, **params: Any) -> Any:
        """POST path (a UPID for asynchronous calls)."""
        ...

    def put(self, path: str, **params: Any) -> Any:
        """PUT path."""
        ...

    def delete(self, path: str, **params: Any) -> Any:
        """DELETE path."""
        ...

    def upload(self, path: str, *, filename: str, data: bytes, **params: Any) -> Any:
        """POST a multipart file upload."""
        ...
