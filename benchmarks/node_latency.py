"""Event to SSE client latency: from the flow emitting an event to a client reading it.

A real hub and ``agent node`` process; a flow (``tick``) emits ``--events`` progress
events every ``--every`` seconds, each carrying the wall time it was emitted at. A client
follows ``GET /node/v1/runs/{fid}/events`` and records when each arrives. The path
measured is the whole one: worker -> WebSocket -> node -> SQLite commit (fsynced) ->
follower queue -> SSE -> client. Target: p99 <= 50 ms.

Run: ``.venv/bin/python benchmarks/node_latency.py [--events N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from typing import Any

from harness import Reaper, machine, progress, sigterm_as_interrupt, start_hub
from node_common import kill_workers, node_client, start_node


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with Reaper() as reaper:
        hub = await start_hub(reaper)
        node = await start_node(reaper, hub)
        latencies: list[float] = []
        try:
            async with node_client(node) as client:
                fid = await client.start("tick", {"events": args.events,
                                                  "every_s": args.every})
                progress(f"following {fid}: {args.events} events every {args.every} s")
                # The client of the product, as an operator's console follows a run: each
                # event is timed as NodeClient hands it on (it ends after ``final``).
                async with contextlib.aclosing(client.events(fid)) as events:
                    async for event in events:
                        arrived = time.time()
                        if event.type == "progress":
                            latencies.append(arrived - float(event.data["message"]))
        finally:
            kill_workers(node.data_dir)
    ms = [x * 1000 for x in latencies]
    return {
        "machine": machine(), "events": len(ms), "every_s": args.every,
        "p50_ms": round(statistics.median(ms), 2), "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2), "max_ms": round(max(ms), 2),
    }


if __name__ == "__main__":
    sigterm_as_interrupt()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--every", type=float, default=0.005)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = asyncio.run(main(args))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{out['events']} events: p50 {out['p50_ms']} ms, p90 {out['p90_ms']} ms, "
              f"p99 {out['p99_ms']} ms, max {out['max_ms']} ms")
