"""Who is calling: the bearer token on every HTTP call and WebSocket but health.

``require(need)`` is the one FastAPI dependency the routes use: routers take
``require(Need.READ)`` for all their routes, and each route that changes state adds
``require(Need.FLOW)`` or ``require(Need.OPERATE)``. It works for HTTP requests and
WebSocket handshakes alike (a refused handshake closes with 1008 and the reason). The
tokens it knows: ``admin.token`` (operator), the named tokens, and linked nodes' tokens.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import HTTPException, status
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from backend import diskspace
from backend.hub.access import Kind, Need, Principal, refusal
from backend.hub.throttle import Append, FailureThrottle, Verdict, report
from backend.protocol import closecodes

log = logging.getLogger(__name__)

T = TypeVar("T")

HINT = ("send 'Authorization: Bearer <token>': <data-dir>/admin.token, or a named token "
        "from POST /api/v1/tokens")


def presented_token(conn: HTTPConnection) -> str:
    scheme, _, presented = conn.headers.get("authorization", "").partition(" ")
    return presented.strip() if scheme.lower() == "bearer" else ""


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "?"


def identify(conn: HTTPConnection) -> Principal | None:
    """The caller the request's bearer token names, or ``None``."""
    token = presented_token(conn)
    if not token:
        return None
    state = conn.app.state
    if hmac.compare_digest(token.encode(), str(state.operator_token).encode()):
        return Principal(Kind.OPERATOR, "admin")
    named = getattr(state, "named_tokens", None)
    found: Principal | None = named.check(token) if named is not None else None
    if found is not None:
        return found
    node_for: Callable[[str], str | None] | None = getattr(state, "node_for", None)
    node = node_for(token) if node_for is not None else None
    return Principal(Kind.NODE, node) if node else None


def _refuse(conn: HTTPConnection, code: int, detail: str) -> Exception:
    if isinstance(conn, WebSocket) or conn.scope["type"] == "websocket":
        return WebSocketException(status.WS_1008_POLICY_VIOLATION, detail[:120])
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return HTTPException(code, detail, headers=headers)


def _too_many(conn: HTTPConnection, wait_s: int) -> Exception:
    detail = (f"too many failed authentications from {client_address(conn)} or with this "
              f"credential; retry in {wait_s} s with a valid token")
    if isinstance(conn, WebSocket) or conn.scope["type"] == "websocket":
        return WebSocketException(closecodes.TRY_AGAIN_LATER, detail[:120])
    return HTTPException(429, detail, headers={"Retry-After": str(wait_s)})


def count_failure(conn: HTTPConnection, credential: str) -> None:
    """Refuse with 429 (or close 1013) if this address or credential has failed too often
    lately; else count one more failure (reported by :func:`report_failure`)."""
    throttle: FailureThrottle | None = getattr(conn.app.state, "throttle", None)
    if throttle is None:
        return
    counted = throttle.failure(throttle.keys(client_address(conn), credential))
    if isinstance(counted, int):
        raise _too_many(conn, counted)
    conn.state.auth_failure = counted


async def report_failure(conn: HTTPConnection, reason: str) -> None:
    """An ``auth.failed`` event (and ``auth.throttled`` as the limit is crossed), at most
    the limit's worth per address and window, so a flood cannot flood the event log."""
    verdict: Verdict | None = getattr(conn.state, "auth_failure", None)
    append: Append | None = getattr(conn.app.state, "report", None)
    if verdict is not None and append is not None:
        # The refusal stands: a full disk must not turn it into a 507 that tells a
        # stranger where the data lives.
        with diskspace.unless_full(log, f"an auth failure from {client_address(conn)}"):
            await report(verdict, append, client_address(conn), conn.url.path, reason)


async def agent_checked(conn: HTTPConnection, credential: str,
                        check: Callable[[], Awaitable[T]]) -> T:
    """Run an agent-credential check (an artifact upload, a node's link) under the same
    throttle as bearer tokens: checked first, so valid credentials always pass."""
    try:
        return await check()
    except HTTPException as exc:
        if exc.status_code in (401, 403):
            count_failure(conn, credential)
            await report_failure(conn, str(exc.detail)[:120])
        raise


def authorize(conn: HTTPConnection, need: Need) -> Principal:
    """The caller, if it may do what needs ``need``: else 401 without a known token (429
    after too many failures), 403 with one whose kind may not."""
    who = identify(conn)
    if who is None:
        given = conn.headers.get("authorization", "")
        missing = "missing token" if not given else "unknown or revoked token"
        count_failure(conn, presented_token(conn))
        raise _refuse(conn, 401, f"{missing}: {HINT}")
    if not who.may(need):
        raise _refuse(conn, 403, refusal(who, need))
    conn.state.principal = who
    return who


def require(need: Need) -> Callable[[HTTPConnection], Awaitable[Principal]]:
    """:func:`authorize` as a FastAPI dependency, recording the named token's use."""

    async def check(conn: HTTPConnection) -> Principal:
        try:
            who = authorize(conn, need)
        except (HTTPException, WebSocketException) as exc:
            reason = exc.detail if isinstance(exc, HTTPException) else exc.reason
            await report_failure(conn, str(reason)[:120])  # a 401's; nothing for a 403
            raise
        named = getattr(conn.app.state, "named_tokens", None)
        if named is not None:
            await named.touch(who)
        return who

    check.__name__ = f"require_{need.value}"
    return check

