"""Numbered record streams: live fan-out to subscribers, and resuming after a known id.

The hub's event log and the node's run streams work the same way: a record is stored and
numbered (ids increase within a stream) before anyone sees it, then handed to whoever is
listening; a reader that reconnects says the last id it saw and gets everything after it,
from the store first and then live. This module is that common part, without the storage:

- :class:`Fanout` hands each published record to every subscriber of its topic through a
  bounded queue. A subscriber that lets its queue fill up is dropped, not waited for, so
  one slow reader never slows the writer (or the other readers); its queue is emptied and
  holds only ``None``, the end marker that tells it to resume from the store after the
  last id it saw.
- :func:`replay_then_live` is the resume: subscribe first, then read the stored backlog
  after the reader's id page by page, then the live queue, skipping any id already
  yielded (a record stored while the backlog was read arrives both ways). Subscribing
  before reading is what makes the join gap-free; skipping by id makes it repeat-free.
- :class:`Cursor` is the repeat filter alone, for readers that merge the two sources
  themselves (a snapshot, then the live queue).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Generic, TypeVar

#: How many records a subscriber may be behind before it is dropped.
QUEUE_SIZE = 10_000

T = TypeVar("T")


class Dropped(Exception):
    """A subscriber fell too far behind and was dropped; resume after ``last``."""

    def __init__(self, message: str, last: int) -> None:
        super().__init__(message)
        self.last = last


class Fanout(Generic[T]):
    """Published records to every subscriber of a topic, each through a bounded queue.

    Topics keep one writer's many streams (a node's runs) apart; a single-stream writer
    uses the default topic. Empty topics are forgotten, so a topic per run costs nothing
    once nobody follows it. Not thread-safe: one event loop publishes and subscribes.
    """

    def __init__(self, maxsize: int = QUEUE_SIZE) -> None:
        self._maxsize = maxsize
        self._topics: dict[str, set[asyncio.Queue[T | None]]] = {}

    def subscribe(self, topic: str = "") -> asyncio.Queue[T | None]:
        """A queue that gets every record published to ``topic`` from now on, and ``None``
        as its last item if it is dropped for falling :data:`QUEUE_SIZE` behind."""
        queue: asyncio.Queue[T | None] = asyncio.Queue(self._maxsize)
        self._topics.setdefault(topic, set()).add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[T | None], topic: str = "") -> None:
        """Stop feeding ``queue`` (no error if it was dropped or never subscribed)."""
        queues = self._topics.get(topic)
        if queues is None:
            return
        queues.discard(queue)
        if not queues:
            del self._topics[topic]

    def subscribers(self, topic: str = "") -> frozenset[asyncio.Queue[T | None]]:
        """The queues being fed for ``topic`` now."""
        return frozenset(self._topics.get(topic, ()))

    def publish(self, record: T, topic: str = "") -> None:
        """Hand ``record`` to every subscriber of ``topic``; drop any whose queue is full.

        A dropped queue is emptied before the end marker goes in. Had it kept its records
        and lost only the oldest to make room, its reader would take the later ones, then
        resume from the store after the last of those, and never see the one lost.
        Emptied, it resumes after the last id it really saw, and the store has the rest.
        """
        for queue in list(self._topics.get(topic, ())):
            try:
                queue.put_nowait(record)
            except asyncio.QueueFull:
                self.unsubscribe(queue, topic)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)


class Cursor:
    """The last id a reader has seen: admits each id once, in increasing order."""

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def admit(self, record_id: int) -> bool:
        """True (and remember it) for an id after the last one; False for a repeat."""
        if record_id <= self.last:
            return False
        self.last = record_id
        return True


async def replay_then_live(
    fanout: Fanout[T],
    stored_after: Callable[[int], Awaitable[Sequence[T]]],
    after: int,
    *,
    key: Callable[[T], int],
    page: int,
    topic: str = "",
    dropped: Callable[[int], Dropped] | None = None,
) -> AsyncGenerator[T, None]:
    """Every record of ``topic`` with id > ``after``: stored ones, then live, none twice.

    ``stored_after(last)`` reads up to ``page`` stored records with ids after ``last`` in
    order; ``key`` gives a record's id. Raises the exception ``dropped(last)`` makes (by
    default :class:`Dropped`) when the live queue overflowed; the reader resumes after
    ``last``. The subscription ends when the iterator is closed.
    """
    queue = fanout.subscribe(topic)
    cursor = Cursor(after)
    try:
        while True:
            backlog = await stored_after(cursor.last)
            for record in backlog:
                cursor.admit(key(record))
                yield record
            if len(backlog) < page:
                break
        while True:
            item = await queue.get()
            if item is None:
                if dropped is not None:
                    raise dropped(cursor.last)
                raise Dropped(f"subscriber fell behind after {cursor.last}", cursor.last)
            if cursor.admit(key(item)):
                yield item
    finally:
        fanout.unsubscribe(queue, topic)


async def until(stop: asyncio.Event, source: AsyncIterator[T]) -> AsyncIterator[T]:
    """``source``'s items until ``stop`` is set, even while ``source`` is idle (a revoked
    token's event stream ends at once, not at its next event)."""
    stopped = asyncio.ensure_future(stop.wait())
    step: asyncio.Future[T] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(source))
            await asyncio.wait({step, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                return
            try:
                item = step.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        stopped.cancel()
        # The pending read runs ``source``: end it before closing ``source``, else aclose
        # finds the generator still running (the client went away mid-wait).
        if step is not None and not step.done():
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await step
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
