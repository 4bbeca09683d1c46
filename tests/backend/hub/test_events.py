"""The event log: stored before seen, ids increasing, follow = backlog + live with no gap."""

from __future__ import annotations

import asyncio
from pathlib import Path

from backend.hub.events import EventLog
from backend.hub.schema import MIGRATIONS
from backend.store import Store


async def _log(tmp_path: Path) -> tuple[Store, EventLog]:
    store = Store(tmp_path / "hub.sqlite3", MIGRATIONS)
    await store.open()
    return store, EventLog(store)


async def test_follow_joins_backlog_and_live_without_gaps_or_repeats(tmp_path: Path) -> None:
    store, log = await _log(tmp_path)
    for i in range(50):
        await log.append("t", "s", {"i": i})
    seen: list[int] = []

    async def follower() -> None:
        async for event in log.follow(after=10):
            seen.append(event.id)
            if len(seen) == 140:
                return

    task = asyncio.create_task(follower())
    for i in range(100):  # appended while the follower reads the backlog
        await log.append("t", "s", {"i": 50 + i})
    await asyncio.wait_for(task, 10)
    assert seen == list(range(11, 151))
    await store.close()


async def test_events_survive_a_reopen_and_ids_keep_increasing(tmp_path: Path) -> None:
    store, log = await _log(tmp_path)
    first = await log.append("a", "s", {})
    await store.close()
    store, log = await _log(tmp_path)
    second = await log.append("b", "s", {"x": [1]})
    assert second.id > first.id
    assert [e.type for e in await log.since(0)] == ["a", "b"]
    assert (await log.since(first.id))[0].data == {"x": [1]}
    await store.close()


async def test_a_subscriber_that_falls_behind_is_dropped_not_blocking(tmp_path: Path) -> None:
    store, log = await _log(tmp_path)
    queue = log.subscribe()
    for i in range(queue.maxsize + 5):
        await log.append("t", "s", {"i": i})
    assert queue not in log.subscribers()
    items = [queue.get_nowait() for _ in range(queue.qsize())]
    assert items[-1] is None  # the end marker: re-follow from the last id
    await store.close()


async def test_a_change_and_its_event_are_committed_together_or_not_at_all(
        tmp_path: Path) -> None:
    """A job's (or task's) event row and the hub's event are one transaction: when the
    second write fails (here a constraint; in life a kill or a full disk between two
    writes), the first is not left behind without its announcement."""
    store, log = await _log(tmp_path)
    change = ("INSERT INTO job_events (job_id, ts, type, data) VALUES (?, ?, ?, ?)",
              ("j_1", 1.0, "submitted", "{}"))
    await log.append("job.submitted", "j_1", {}, along=[change])
    await store.execute("CREATE TRIGGER refuse BEFORE INSERT ON events "
                        "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    try:
        await log.append("job.started", "j_1", {}, along=[(change[0], ("j_1", 2.0,
                                                                       "started", "{}"))])
    except Exception as exc:
        assert "refused" in str(exc)
    else:
        raise AssertionError("the refused event was stored")
    rows = await store.query("SELECT type FROM job_events")
    assert [r["type"] for r in rows] == ["submitted"]
    assert [e.type for e in await log.since(0)] == ["job.submitted"]
    await store.close()
