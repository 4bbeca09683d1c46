"""Job pickup: from ``POST /api/v1/jobs`` to the job's own process running, on loopback.

One hub, one runner (both real processes). Each job is ``date +%s.%N``: its first act is
to print the wall-clock time, so submit-to-started includes the offer, the runner's
resource check, the payload saved (fsynced) to its journal, the shim's start (a Python
process in its own session) and the job's exec. Jobs are submitted one after the other
(``--jobs``, default 100); p50 and p99 are reported. Target: p99 <= 200 ms.

Run: ``.venv/bin/python benchmarks/runner_pickup.py [--jobs N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

from harness import Reaper, machine, progress, sigterm_as_interrupt
from runner_common import free_port, hub_on, start_runner, submit, wait_ready

CONFIG = {"heartbeat_s": 5.0, "report_interval_s": 0.1, "retry_s": 1.0}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def run(reaper: Reaper, jobs: int) -> dict[str, object]:
    hub = await hub_on(reaper, free_port())
    async with hub.client(timeout=10) as client:
        await start_runner(reaper, client, hub, "r1", CONFIG)
        await wait_ready(client, ["r1"])
        pickups: list[float] = []
        for i in range(jobs + 3):
            sent = time.time()
            job_id = await submit(client, ["date", "+%s.%N"])
            while True:
                job = await client.job(job_id)
                if job["state"] not in ("queued", "running"):
                    break
                await asyncio.sleep(0.01)
            assert job["state"] == "succeeded", job
            for _ in range(100):
                text = await client.job_log(job_id)
                if text.strip():
                    break
                await asyncio.sleep(0.02)
            if i >= 3:  # the first jobs warm the page cache
                pickups.append(float(text.split()[0]) - sent)
            if i % 25 == 0:
                progress(f"{i} jobs")
    return {"jobs": jobs, "p50_ms": round(statistics.median(pickups) * 1000, 1),
            "p99_ms": round(percentile(pickups, 0.99) * 1000, 1),
            "max_ms": round(max(pickups) * 1000, 1), "machine": machine()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sigterm_as_interrupt()
    with Reaper() as reaper:
        result = asyncio.run(run(reaper, args.jobs))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"job pickup over {result['jobs']} jobs: p50 {result['p50_ms']} ms, "
              f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms (target p99 <= 200 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
