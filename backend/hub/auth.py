"""Who is calling: the bearer token on every HTTP call and WebSocket but health.

``require(need)`` is the one FastAPI dependency the routes use: routers take
``require(Need.READ)`` for all their routes, and each route that changes state adds
``require(Need.FLOW)`` or ``require(Need.OPERATE)``. It works for HTTP requests and
WebSocket handshakes alike (a refused handshake closes with 1008 and the reason). The
tokens it knows: ``admin.token`` (operator), the named tokens, and linked nodes' tokens.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, status
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from backend.hub.access import Kind, Need, Principal, refusal

HINT = ("send 'Authorization: Bearer <token>': <data-dir>/admin.token, or a named token "
        "from POST /api/v1/tokens")


def identify(conn: HTTPConnection) -> Principal | None:
    """The caller the request's bearer token names, or ``None``."""
    scheme, _, presented = conn.headers.get("authorization", "").partition(" ")
    token = presented.strip()
    if scheme.lower() != "bearer" or not token:
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


def authorize(conn: HTTPConnection, need: Need) -> Principal:
    """The caller, if it may do what needs ``need``: else 401 without a known token, 403
    with one whose kind may not."""
    who = identify(conn)
    if who is None:
        given = conn.headers.get("authorization", "")
        missing = "missing token" if not given else "unknown or revoked token"
        raise _refuse(conn, 401, f"{missing}: {HINT}")
    if not who.may(need):
        raise _refuse(conn, 403, refusal(who, need))
    conn.state.principal = who
    return who


def require(need: Need) -> Callable[[HTTPConnection], Awaitable[Principal]]:
    """:func:`authorize` as a FastAPI dependency, recording the named token's use."""

    async def check(conn: HTTPConnection) -> Principal:
        who = authorize(conn, need)
        named = getattr(conn.app.state, "named_tokens", None)
        if named is not None:
            await named.touch(who)
        return who

    check.__name__ = f"require_{need.value}"
    return check

