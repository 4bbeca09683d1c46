"""The hub's event log: every state change, persisted, numbered, fanned out.

An event is stored before any subscriber sees it, and its id is SQLite's monotonically
increasing row id, so a client that reconnects with the last id it saw gets exactly the
events after it (:meth:`EventLog.follow`). Subscribers get a bounded queue; one that falls
too far behind is dropped rather than slowing the hub, and catches up from the store when
it follows again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from backend.store import Store

SUBSCRIBER_QUEUE = 10_000


@dataclass(frozen=True)
class Event:
    id: int
    ts: float
    type: str
    subject: str
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "ts": self.ts, "type": self.type,
            "subject": self.subject, "data": self.data,
        }


class SubscriberDropped(Exception):
    """The subscriber's queue overflowed; follow again from its last id."""


class EventLog:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = asyncio.Lock()
        self._subscribers: set[asyncio.Queue[Event | None]] = set()

    async def append(self, type: str, subject: str, data: dict[str, Any]) -> Event:
        ts = time.time()
        async with self._lock:  # ids reach subscribers in the order they were assigned
            event_id = await self._store.execute(
                "INSERT INTO events (ts, type, subject, data) VALUES (?, ?, ?, ?)",
                (ts, type, subject, json.dumps(data)),
            )
            event = Event(event_id, ts, type, subject, data)
            for queue in list(self._subscribers):
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:
                    self._subscribers.discard(queue)
                    queue.get_nowait()  # make room for the end marker
                    queue.put_nowait(None)
        return event

    async def since(self, after: int, limit: int = 1000) -> list[Event]:
        rows = await self._store.query(
            "SELECT id, ts, type, subject, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [Event(r["id"], r["ts"], r["type"], r["subject"], json.loads(r["data"]))
                for r in rows]

    async def last_id(self) -> int:
        row = await self._store.query_one("SELECT MAX(id) AS m FROM events")
        return int(row["m"] or 0) if row else 0

    async def follow(self, after: int) -> AsyncIterator[Event]:
        """Every event with id > ``after``: first from the store, then live, none twice.

        Subscribes before reading the backlog, so nothing appended in between is missed.
        Raises :class:`SubscriberDropped` if the consumer falls too far behind.
        """
        queue: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        try:
            last = after
            while True:
                backlog = await self.since(last)
                for event in backlog:
                    last = event.id
                    yield event
                if len(backlog) < 1000:
                    break
            while True:
                item = await queue.get()
                if item is None:
                    raise SubscriberDropped(f"subscriber fell behind after event {last}")
                if item.id <= last:
                    continue
                last = item.id
                yield item
        finally:
            self._subscribers.discard(queue)

    def subscribe(self) -> asyncio.Queue[Event | None]:
        """A live-only queue (for in-process views that load a snapshot first)."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event | None]) -> None:
        self._subscribers.discard(queue)
