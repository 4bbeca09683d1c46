"""The operator token check that guards every mutating HTTP call."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status


def require_operator(request: Request) -> None:
    """FastAPI dependency: ``Authorization: Bearer <operator token>`` or 401."""
    expected: str = request.app.state.operator_token
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    hint = "send 'Authorization: Bearer <token>' with the token from <data-dir>/admin.token"
    if not header:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"missing operator token: {hint}",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if scheme.lower() != "bearer" or not (
        hmac.compare_digest(presented.strip().encode(), expected.encode())
        or _linked_node(request, presented.strip())
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"wrong operator token: {hint}",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _linked_node(request: Request, token: str) -> bool:
    """A linked node's own token acts for the operator (``backend/hub/nodes.py``)."""
    accepts = getattr(request.app.state, "node_tokens", None)
    return bool(accepts is not None and accepts(token))
