"""What every request of the client shares: reading an answer, and turning failures
into the client's exceptions."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable
from typing import Any

import httpx

from backend.client._errors import HubError, HubUnreachable


@functools.cache
def _default_tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def tls_for(url: str) -> ssl.SSLContext | bool:
    """What to verify an ``https`` hub with: the system's trust store, loaded once per
    process (building it costs 20-30 ms, and a console, a flow worker or a runner makes
    several clients). A plain ``http`` URL (a loopback hub) needs none at all."""
    return _default_tls() if url.lower().startswith("https:") else False


def response_detail(response: httpx.Response) -> Any:
    """The ``detail`` of an error body, or the body, or its text (first 500 characters)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return body.get("detail", body) if isinstance(body, dict) else body


def unreachable(url: str, exc: httpx.TransportError) -> HubUnreachable:
    """The client's error for a transport failure of the HTTP library."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        reason = f"no answer ({type(exc).__name__})"
    return HubUnreachable(url, reason)


def check(response: httpx.Response, what: str) -> httpx.Response:
    """``response`` itself; a status >= 400 raises :class:`HubError` with its detail."""
    if response.status_code >= 400:
        raise HubError(response.status_code, response_detail(response), what)
    return response


async def send(url: str, request: Awaitable[httpx.Response], what: str) -> httpx.Response:
    """Await ``request``; a status >= 400 raises :class:`HubError`, no answer
    :class:`HubUnreachable`."""
    try:
        response = await request
    except httpx.TransportError as exc:
        raise unreachable(url, exc) from None
    return check(response, what)


def body(response: httpx.Response) -> Any:
    """The JSON body, or None for an empty one."""
    return response.json() if response.content else None
