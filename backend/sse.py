"""Server-sent events: framing, ``Last-Event-ID`` parsing and a keep-alive stream.

Shared by the hub's event log and, later, the node's run streams: both number their
events with stream offsets, so resuming is "everything after the id the client last saw".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse

KEEPALIVE_S = 15.0


def frame(event_id: int, event: str, data: Any) -> bytes:
    """One SSE record; ``data`` is JSON on a single line."""
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


def resume_point(request: Request, after: int | None) -> int:
    """The id to resume after: the ``Last-Event-ID`` header wins over ``?after=``."""
    header = request.headers.get("last-event-id")
    if header is None or header.strip() == "":
        return after or 0
    try:
        value = int(header)
    except ValueError:
        raise HTTPException(
            422, f"Last-Event-ID must be an event id (an integer), got {header[:40]!r}"
        ) from None
    if value < 0:
        raise HTTPException(422, "Last-Event-ID must not be negative")
    return value


#: What a route that streams events answers, for the OpenAPI document (``responses=``).
DOCUMENTED: dict[int | str, dict[str, Any]] = {200: {
    "description": "server-sent events, resumable with Last-Event-ID",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


def stream(records: AsyncIterator[bytes], *, coalesce_s: float = 0.0) -> StreamingResponse:
    """Wrap SSE records in a response, with a comment line every 15 s to keep proxies open.

    ``coalesce_s``: after a record, wait this long for more and send them in one write.
    A busy stream (the hub's event log at hundreds of events a second) then costs its
    reader one wake-up per batch instead of one per event, which on a console sharing
    its loop with the hub is most of the cost; a lone event is sent that much later.
    """

    async def with_keepalive() -> AsyncIterator[bytes]:
        yield b": stream open\n\n"
        iterator = aiter(records)
        pending: asyncio.Task[bytes] | None = None
        batch: list[bytes] = []
        flush_at = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(iterator))
                wait = max(0.0, flush_at - loop.time()) if batch else KEEPALIVE_S
                done, _ = await asyncio.wait({pending}, timeout=wait)
                if not done:
                    if batch:
                        yield b"".join(batch)
                        batch = []
                    else:
                        yield b": keep-alive\n\n"
                    continue
                try:
                    record = pending.result()
                except StopAsyncIteration:
                    if batch:
                        yield b"".join(batch)
                    return
                pending = None
                if coalesce_s <= 0:
                    yield record
                    continue
                if not batch:
                    flush_at = loop.time() + coalesce_s
                batch.append(record)
        finally:
            if pending is not None:
                pending.cancel()

    return StreamingResponse(
        with_keepalive(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
