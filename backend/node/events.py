"""The node's durable event store: every run event committed before anyone sees it.

Appends are **group-committed**: :meth:`EventStore.append` numbers the event (its offset in
the run's stream), queues it and waits; one writer task takes everything queued, writes it
in a single SQLite transaction and only then resolves the waiters and fans the events out
to followers. Under load many events share one commit (that is what makes tens of
thousands of durable appends per second possible); with one event in flight it is one
commit, so latency stays a single write. Nothing is persisted on a timer.

:meth:`EventStore.follow` gives a run's events after an offset: first the backlog from the
store, then live, none twice. That is exactly what an SSE client that reconnects with
``Last-Event-ID`` needs. The fan-out (a topic per run) and that resume are
:mod:`backend.streams`, shared with the hub's event log, so both behave alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from backend import diskspace, streams
from backend.node.fold import RunEvent
from backend.store import Store

log = logging.getLogger(__name__)

MAX_BATCH = 5_000
#: How soon a commit refused by a full disk is tried again (doubling up to the max).
FULL_RETRY_S = 0.1
FULL_RETRY_MAX_S = 2.0
BACKLOG_PAGE = 1_000


class FollowerDropped(streams.Dropped):
    """A follower fell too far behind; it resumes from the store with its last offset."""


@dataclass
class _Pending:
    fid: str
    event: RunEvent
    wseq: int | None
    done: asyncio.Future[RunEvent]


class EventStore:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._next: dict[str, int] = {}
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._followers: streams.Fanout[RunEvent] = streams.Fanout()  # topic: the run's fid
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0
        self.committed = 0
        #: Called for each committed event, in order, before waiters and followers see it
        #: (the node folds it into the run's state there).
        self.on_commit: Callable[[str, RunEvent], None] | None = None

    async def start(self) -> None:
        rows = await self._store.query(
            "SELECT fid, MAX(offset) AS last FROM events GROUP BY fid"
        )
        self._next = {r["fid"]: int(r["last"]) + 1 for r in rows}
        self._writer = asyncio.create_task(self._write_loop(), name="node-event-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop the writer."""
        if self._writer is None:
            return
        while not self._queue.empty():  # noqa: ASYNC110 - the writer drains it
            await asyncio.sleep(0.005)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None

    # -- appending --------------------------------------------------------------------

    def append_nowait(
        self, fid: str, type: str, data: dict[str, object], wseq: int | None = None
    ) -> asyncio.Future[RunEvent]:
        """Number and queue an event; the future resolves once it is committed."""
        offset = self._next.get(fid, 1)
        self._next[fid] = offset + 1
        event = RunEvent(offset, time.time(), type, data)
        done: asyncio.Future[RunEvent] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(fid, event, wseq, done))
        return done

    async def append(
        self, fid: str, type: str, data: dict[str, object], wseq: int | None = None
    ) -> RunEvent:
        return await self.append_nowait(fid, type, data, wseq)

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            rows = [
                (p.fid, p.event.offset, p.event.ts, p.event.type, json.dumps(p.event.data),
                 p.wseq)
                for p in batch
            ]
            try:
                await self._commit(rows)
            except Exception as exc:  # a failed commit fails every append in it
                log.exception("could not commit %d run events", len(batch))
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(exc)
                await self._resync()
                continue
            self.commits += 1
            self.committed += len(batch)
            for p in batch:
                if self.on_commit is not None:
                    try:
                        self.on_commit(p.fid, p.event)
                    except Exception:
                        log.exception("folding %s #%d failed", p.fid, p.event.offset)
                if not p.done.done():
                    p.done.set_result(p.event)
                self._publish(p.fid, p.event)

    async def _commit(self, rows: Sequence[Sequence[object]]) -> None:
        """Write one batch; while the disk is full, keep it and try again.

        Failing the batch would lose it: its workers' events are already taken (their
        ``wseq`` counted), so a resend would be skipped. Waiting keeps every event, in
        order, none twice: nothing is acknowledged or shown before it is committed, the
        workers hold what is unacknowledged, and the writer goes on by itself the moment
        space returns (new runs are refused with 507 meanwhile).
        """
        delay = FULL_RETRY_S
        while True:
            try:
                await self._store.executemany(
                    "INSERT INTO events (fid, offset, ts, type, data, wseq) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows,
                )
                if delay > FULL_RETRY_S:
                    log.warning("run events are committed again (%d waited)", len(rows))
                return
            except Exception as exc:
                if not diskspace.is_full(exc):
                    raise
                if delay == FULL_RETRY_S:
                    log.warning("cannot commit %d run events, the disk of %s is full (%s); "
                                "holding them until there is room", len(rows),
                                self._store.path.parent, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, FULL_RETRY_MAX_S)

    async def _resync(self) -> None:
        rows = await self._store.query(
            "SELECT fid, MAX(offset) AS last FROM events GROUP BY fid"
        )
        self._next = {r["fid"]: int(r["last"]) + 1 for r in rows}

    def _publish(self, fid: str, event: RunEvent) -> None:
        self._followers.publish(event, fid)

    # -- reading ----------------------------------------------------------------------

    async def since(self, fid: str, after: int, limit: int = BACKLOG_PAGE) -> list[RunEvent]:
        rows = await self._store.query(
            "SELECT offset, ts, type, data FROM events WHERE fid = ? AND offset > ? "
            "ORDER BY offset LIMIT ?", (fid, after, limit),
        )
        return [RunEvent(r["offset"], r["ts"], r["type"], json.loads(r["data"])) for r in rows]

    async def all(self, fid: str) -> list[RunEvent]:
        events: list[RunEvent] = []
        while True:
            page = await self.since(fid, events[-1].offset if events else 0, 10_000)
            events += page
            if len(page) < 10_000:
                return events

    async def last_wseq(self, fid: str) -> int:
        row = await self._store.query_one(
            "SELECT MAX(wseq) AS w FROM events WHERE fid = ?", (fid,)
        )
        return int(row["w"] or 0) if row else 0

    def follow(self, fid: str, after: int) -> AsyncGenerator[RunEvent, None]:
        """Every event of ``fid`` with offset > ``after``: backlog, then live, none twice.

        Subscribes before reading the backlog so nothing committed in between is missed.
        Raises :class:`FollowerDropped` if the consumer falls too far behind.
        """

        async def stored_after(last: int) -> list[RunEvent]:
            return await self.since(fid, last)

        return streams.replay_then_live(
            self._followers, stored_after, after, key=_offset, page=BACKLOG_PAGE, topic=fid,
            dropped=lambda last: FollowerDropped(
                f"follower of {fid} fell behind after {last}", last))


def _offset(event: RunEvent) -> int:
    return event.offset
