"""Reading a JSON request body by hand, for routes that validate it themselves (a body
whose shape depends on one of its fields, a lock's candidate checked against the lock's
own schema): bounded, and every way it can be wrong a 413 or a 422 that says which."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request

#: The largest body such a route reads unless it says otherwise (a task spec fits easily).
DEFAULT_LIMIT = 16 * 1024 * 1024


async def read_json(request: Request, limit: int = DEFAULT_LIMIT) -> Any:
    """The request body as JSON: 413 over ``limit`` bytes, 422 if it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes is over the {limit} byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body is over the {limit} byte limit")
    if not body:
        raise HTTPException(422, "empty body: send a JSON object")
    try:
        return json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError too: not UTF-8
        raise HTTPException(422, f"malformed JSON: {exc}") from None
