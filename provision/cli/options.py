"""Groups of Click parameters declared once, outside the command functions they decorate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def with_params(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply Click parameter decorators in the order written (first = first shown)."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply
