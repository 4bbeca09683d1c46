"""Fan-out and resume of numbered streams, over an in-memory list standing in for a store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest

from backend.streams import Cursor, Dropped, Fanout, replay_then_live, until


@dataclass(frozen=True)
class Rec:
    id: int


def rec_id(record: Rec) -> int:
    return record.id


class Stream:
    """A store and its writer: store first, then publish, as the hub and node do."""

    def __init__(self, fanout: Fanout[Rec], topic: str = "") -> None:
        self.fanout = fanout
        self.topic = topic
        self.stored: list[Rec] = []
        self.reads: list[int] = []

    def append(self) -> Rec:
        record = Rec(len(self.stored) + 1)
        self.stored.append(record)
        self.fanout.publish(record, self.topic)
        return record

    async def after(self, last: int, page: int = 3) -> Sequence[Rec]:
        self.reads.append(last)
        await asyncio.sleep(0)  # a real store yields here, and writers get to run
        return [r for r in self.stored if r.id > last][:page]


def test_publish_reaches_every_subscriber_of_its_topic_only() -> None:
    fanout: Fanout[Rec] = Fanout()
    a, b, other = fanout.subscribe("run-1"), fanout.subscribe("run-1"), fanout.subscribe("x")
    fanout.publish(Rec(1), "run-1")
    assert a.get_nowait() == b.get_nowait() == Rec(1)
    assert other.empty()
    assert fanout.subscribers("run-1") == {a, b}


def test_unsubscribe_forgets_an_empty_topic_and_tolerates_unknown_queues() -> None:
    fanout: Fanout[Rec] = Fanout()
    queue = fanout.subscribe("run-1")
    fanout.unsubscribe(queue, "run-1")
    fanout.unsubscribe(queue, "run-1")  # twice: no error
    fanout.unsubscribe(queue, "never")
    assert fanout._topics == {}
    fanout.publish(Rec(1), "run-1")
    assert queue.empty()


def test_a_full_subscriber_is_dropped_with_an_end_marker_and_others_go_on() -> None:
    fanout: Fanout[Rec] = Fanout(maxsize=3)
    slow, fast = fanout.subscribe(), fanout.subscribe()
    for i in range(1, 5):
        fanout.publish(Rec(i))
        fast.get_nowait()
    assert fanout.subscribers() == {fast}
    # Emptied: reading 2 and 3 and resuming after 3 would skip the lost 1 for good.
    assert [slow.get_nowait() for _ in range(slow.qsize())] == [None]
    fanout.publish(Rec(5))
    assert slow.empty() and fast.get_nowait() == Rec(5)


def test_a_cursor_admits_each_id_once_in_increasing_order() -> None:
    cursor = Cursor(2)
    assert [cursor.admit(i) for i in (1, 2, 3, 3, 5, 4)] == [
        False, False, True, False, True, False]
    assert cursor.last == 5


async def test_replay_joins_backlog_and_live_without_gaps_or_repeats() -> None:
    fanout: Fanout[Rec] = Fanout()
    stream = Stream(fanout)
    for _ in range(10):
        stream.append()
    seen: list[int] = []

    async def reader() -> None:
        async for record in replay_then_live(fanout, stream.after, 4, key=rec_id, page=3):
            seen.append(record.id)
            if record.id == 30:
                return

    task = asyncio.create_task(reader())
    for _ in range(20):  # appended while the reader pages through the backlog
        stream.append()
        await asyncio.sleep(0)
    await asyncio.wait_for(task, 5)
    assert seen == list(range(5, 31))
    assert stream.reads[0] == 4 and len(stream.reads) > 2  # paged from the resume point
    assert fanout._topics == {}  # the reader let go of its queue


async def test_an_overflowing_reader_gets_dropped_with_its_last_id() -> None:
    fanout: Fanout[Rec] = Fanout(maxsize=2)
    stream = Stream(fanout, "run")
    records = replay_then_live(fanout, stream.after, 0, key=rec_id, page=3, topic="run")
    stream.append()
    assert (await anext(records)).id == 1  # from the store; now subscribed and live
    for _ in range(3):
        stream.append()  # the live queue holds 2, so the reader is dropped
    with pytest.raises(Dropped) as caught:
        await anext(records)  # 2 and 3 are not handed over after the drop: no gap
    assert caught.value.last == 1 and "after 1" in str(caught.value)
    resumed = replay_then_live(fanout, stream.after, caught.value.last, key=rec_id, page=3,
                               topic="run")
    assert [(await anext(resumed)).id for _ in range(3)] == [2, 3, 4]
    await resumed.aclose()
    assert fanout.subscribers("run") == frozenset()


async def test_the_caller_chooses_the_exception_for_a_drop() -> None:
    class Behind(Dropped):
        pass

    fanout: Fanout[Rec] = Fanout(maxsize=1)
    stream = Stream(fanout)
    records = replay_then_live(fanout, stream.after, 0, key=rec_id, page=3,
                               dropped=lambda last: Behind(f"behind at {last}", last))
    task = asyncio.ensure_future(anext(records))
    await asyncio.sleep(0.01)  # subscribed, backlog empty, waiting live
    stream.append()
    stream.append()
    with pytest.raises(Behind, match="behind at 0"):
        await task


async def test_closing_a_reader_early_unsubscribes_it() -> None:
    fanout: Fanout[Rec] = Fanout()
    stream = Stream(fanout)
    stream.append()
    async with contextlib.aclosing(
            replay_then_live(fanout, stream.after, 0, key=rec_id, page=3)) as records:
        assert (await anext(records)).id == 1
        assert len(fanout.subscribers()) == 1
    assert fanout.subscribers() == frozenset()


async def test_until_closes_an_idle_source_when_its_reader_goes_away() -> None:
    """A client leaving while the stream waits: the source is closed, not left running."""
    closed = asyncio.Event()

    async def idle() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.Event().wait()  # nothing more, ever
            yield 2
        finally:
            closed.set()

    stream = until(asyncio.Event(), idle())
    assert await anext(stream) == 1
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.01)
    waiting.cancel()  # the reader goes away mid-wait
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await stream.aclose()
    assert closed.is_set()
