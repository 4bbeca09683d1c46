"""The hub's event log: every state change, persisted, numbered, fanned out.

An event is stored before any subscriber sees it, and its id is SQLite's monotonically
increasing row id, so a client that reconnects with the last id it saw gets exactly the
events after it (:meth:`EventLog.follow`). Subscribers get a bounded queue; one that falls
too far behind is dropped rather than slowing the hub, and catches up from the store when
it follows again. The fan-out and the resume are :mod:`backend.streams`, shared with the
node's run streams, so both behave alike.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from backend import streams
from backend.store import Store

BACKLOG_PAGE = 1000


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


class SubscriberDropped(streams.Dropped):
    """The subscriber's queue overflowed; follow again from its last id."""


class EventLog:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = asyncio.Lock()
        self._feed: streams.Fanout[Event] = streams.Fanout()

    def subscribers(self) -> frozenset[asyncio.Queue[Event | None]]:
        """The live queues being fed now."""
        return self._feed.subscribers()

    async def append(self, type: str, subject: str, data: dict[str, Any], *,
                     along: Sequence[tuple[str, Sequence[Any]]] = ()) -> Event:
        """Store and publish an event; ``along`` are the statements of the change it
        announces, committed in the same transaction (a kill keeps both or neither)."""
        ts = time.time()
        async with self._lock:  # ids reach subscribers in the order they were assigned
            *_, event_id = await self._store.execute_all([*along, (
                "INSERT INTO events (ts, type, subject, data) VALUES (?, ?, ?, ?)",
                (ts, type, subject, json.dumps(data)),
            )])
            event = Event(event_id, ts, type, subject, data)
            self._feed.publish(event)
        return event

    async def since(self, after: int, limit: int = BACKLOG_PAGE) -> list[Event]:
        rows = await self._store.query(
            "SELECT id, ts, type, subject, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [Event(r["id"], r["ts"], r["type"], r["subject"], json.loads(r["data"]))
                for r in rows]

    async def last_id(self) -> int:
        row = await self._store.query_one("SELECT MAX(id) AS m FROM events")
        return int(row["m"] or 0) if row else 0

    def follow(self, after: int) -> AsyncGenerator[Event, None]:
        """Every event with id > ``after``: first from the store, then live, none twice.

        Subscribes before reading the backlog, so nothing appended in between is missed.
        Raises :class:`SubscriberDropped` if the consumer falls too far behind.
        """
        return streams.replay_then_live(
            self._feed, self.since, after, key=_event_id, page=BACKLOG_PAGE,
            dropped=lambda last: SubscriberDropped(
                f"subscriber fell behind after event {last}", last))

    def subscribe(self) -> asyncio.Queue[Event | None]:
        """A live-only queue (for in-process views that load a snapshot first)."""
        return self._feed.subscribe()

    def unsubscribe(self, queue: asyncio.Queue[Event | None]) -> None:
        self._feed.unsubscribe(queue)


def _event_id(event: Event) -> int:
    return event.id
