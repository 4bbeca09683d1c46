"""What every request of the client shares: reading an answer, and turning failures
into the client's exceptions."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable
from typing import Any

import httpx

from backend.client._errors import HubError, HubUnreachable
from backend.tls import Trust


def tls_for(url: str, trust: Trust | None = None) -> ssl.SSLContext | bool:
    """What to verify an ``https`` (or ``wss``) hub with: its pinned certificate (see
    :func:`backend.tls.discover`) or the system's trust store, each context built once per
    process. A plain ``http`` URL (a loopback hub) needs none at all."""
    if not url.lower().startswith(("https:", "wss:")):
        return False
    return (trust or Trust()).context()


def response_detail(response: httpx.Response) -> Any:
    """What an error answer says (a problem, ``backend/problems.py``): a 422's field
    errors (a list, each with its ``loc``), else its ``detail`` sentence; or the body, or
    its text (first 500 characters), from something that is not this API."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(body, dict):
        return body
    if isinstance(body.get("errors"), list):
        return body["errors"]
    return body.get("detail", body)


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
