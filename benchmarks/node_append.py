"""Durable append rate of flow events: committed to SQLite before they are acknowledged.

Two measurements:

- **store**: the node's :class:`~backend.node.events.EventStore` in this process, with
  ``--producers`` concurrent appenders (as many runs would be) each awaiting its own
  commit before appending again, and ``PRAGMA synchronous`` FULL (the node's default:
  each commit is fsynced) and NORMAL. Group commit is what makes this fast: every commit
  carries whatever was queued while the previous one was written.
- **flow**: a real ``agent node`` process and one worker running a flow that emits
  ``--flow-events`` log events as fast as it can; the rate is events over the time from
  the run's first to its last committed event (worker -> WebSocket -> commit -> ack).

Run: ``.venv/bin/python benchmarks/node_append.py [--events N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import Reaper, machine, progress, sigterm_as_interrupt, start_hub
from node_common import kill_workers, node_client, start_node

from backend.node.events import EventStore
from backend.node.schema import MIGRATIONS
from backend.store import Store


async def store_rate(events: int, producers: int, synchronous: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "node.sqlite3", MIGRATIONS)
        await store.open()
        await store.execute(f"PRAGMA synchronous={synchronous}")
        log = EventStore(store)
        await log.start()
        per = events // producers
        data: dict[str, object] = {"level": "info", "message": "x" * 40}

        async def producer(i: int) -> None:
            fid = f"fl_{i:04d}"
            for _ in range(per):
                await log.append(fid, "log", data)

        started = time.perf_counter()
        await asyncio.gather(*(producer(i) for i in range(producers)))
        elapsed = time.perf_counter() - started
        commits = log.commits
        await log.stop()
        await store.close()
    total = per * producers
    return {"synchronous": synchronous, "producers": producers, "events": total,
            "seconds": round(elapsed, 3), "events_per_s": round(total / elapsed),
            "commits": commits, "events_per_commit": round(total / commits, 1)}


async def flow_rate(n: int) -> dict[str, Any]:
    with Reaper() as reaper:
        hub = await start_hub(reaper)
        node = await start_node(reaper, hub)
        try:
            async with node_client(node) as client:
                fid = await client.start("burst", {"events": n})
                while True:
                    state = await client.state(fid)
                    if state["state"] in ("done", "error", "interrupted"):
                        break
                    await asyncio.sleep(0.1)
                first = last = None
                async with contextlib.aclosing(client.events(fid)) as events:
                    async for event in events:
                        if event.type == "log":
                            first = first or event.ts
                            last = event.ts
        finally:
            kill_workers(node.data_dir)
    assert first is not None and last is not None, state
    return {"events": n, "state": state["state"], "seconds": round(last - first, 3),
            "events_per_s": round(n / (last - first))}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "store": []}
    for synchronous in ("FULL", "NORMAL"):
        for producers in (1, 100):
            progress(f"store: {producers} producers, synchronous={synchronous}")
            n = args.events if producers > 1 else min(args.events, 5000)
            results["store"].append(await store_rate(n, producers, synchronous))
    progress(f"flow: one worker emitting {args.flow_events} events")
    results["flow"] = await flow_rate(args.flow_events)
    return results


if __name__ == "__main__":
    sigterm_as_interrupt()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--flow-events", type=int, default=50_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = asyncio.run(main(args))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for row in out["store"]:
            print(f"store  sync={row['synchronous']:<6} producers={row['producers']:<4} "
                  f"{row['events_per_s']:>8} events/s  ({row['events_per_commit']} per commit)")
        f = out["flow"]
        print(f"flow   one worker, {f['events']} events: {f['events_per_s']} events/s")
    sys.exit(0)
