"""The asyncio adapter of the follower: reads a resumable SSE stream over httpx.

:func:`follow` is an async generator of new :class:`Record` s that reopens the stream
with ``Last-Event-ID`` after every cut, as :class:`Follower` decides. It is stopped two
ways, neither of which cancels it in the middle of a read: ``stop`` (an event checked
after every record and after ``idle_s`` of silence) or the consumer leaving its loop and
closing it (use ``contextlib.aclosing``). Cancelling an httpx read half-way leaves its
connection clean-up for later, outside any task, which qasync's loop then reports; an idle
timeout that reopens the stream costs one request a second and avoids it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import httpx

from backend.client._errors import HubError, StreamLost
from backend.client._follower import Follower, GiveUp, Record, SseParser
from backend.client._http import response_detail

#: How long opening the stream may take before it counts as a failed attempt.
OPEN_TIMEOUT_S = 10.0


async def follow(
    http: httpx.AsyncClient, path: str, follower: Follower, *, what: str,
    params: dict[str, Any] | None = None, stop: asyncio.Event | None = None,
    idle_s: float | None = None, wake: asyncio.Event | None = None,
    on_cut: Callable[[], Awaitable[None]] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[Record, None]:
    """Every new record of the stream at ``path``, resumed across cuts, until ``stop``.

    A status under 500 is final (:class:`HubError`: the run or job is unknown, the token
    is wrong); a 5xx or a transport failure is a cut. ``wake`` cuts a backoff short (a
    poller that sees the hub answering again sets it); ``on_cut`` runs before each
    reopening after a failure, to :meth:`Follower.rebase` for instance. Raises
    :class:`StreamLost` when the follower gives up.
    """
    timeout = httpx.Timeout(OPEN_TIMEOUT_S, read=idle_s)
    while stop is None or not stop.is_set():
        try:
            async with http.stream("GET", path, params=params, headers=follower.headers(),
                                   timeout=timeout) as response:
                if response.status_code != 200:
                    await response.aread()
                    if response.status_code < 500:
                        raise HubError(response.status_code, response_detail(response), what)
                    raise httpx.RemoteProtocolError(f"{response.status_code}")
                parser = SseParser()
                async for text in response.aiter_text():
                    for record in parser.feed_text(text):
                        if not follower.received(record, clock()):
                            continue
                        yield record
                        if stop is not None and stop.is_set():
                            return
            continue  # a clean end: reopen at once, after the last record
        except httpx.ReadTimeout:
            if idle_s is not None:
                continue  # quiet for idle_s: check stop, then reopen after last_id
        except httpx.TransportError:
            pass
        decision = follower.failed(clock())
        if isinstance(decision, GiveUp):
            raise StreamLost(what, decision.last_id, follower.patience_s or 0.0)
        await _pause(decision.delay_s, wake)
        if on_cut is not None:
            await on_cut()


async def _pause(delay_s: float, wake: asyncio.Event | None) -> None:
    if wake is None:
        await asyncio.sleep(delay_s)
        return
    wake.clear()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay_s):
            await wake.wait()
