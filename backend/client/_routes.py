"""Which client method serves which route of the served API.

Each public method of :class:`HubClient` and :class:`NodeClient` that makes a request is
marked with :func:`route`; the marks collect in :data:`ROUTES`. A test compares them with
the routes the real app serves, so a route added later without a client method (or a
method left behind by a removed route) fails the suite instead of sending each caller
back to hand-written requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

#: ``(method, path template)`` -> the qualified name of the method that calls it.
ROUTES: dict[tuple[str, str], str] = {}


def route(method: str, path: str) -> Callable[[F], F]:
    """Mark a client method as the caller of ``method path`` (path as the app declares it)."""
    def mark(fn: F) -> F:
        ROUTES[(method, path)] = getattr(fn, "__qualname__", repr(fn))
        return fn
    return mark
