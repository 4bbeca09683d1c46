"""Exactly once: many short jobs over 4 runners while the hub is restarted twice.

One hub on a fixed port and 4 runners (real processes). ``--jobs`` (1,000 by default)
short jobs are submitted; each appends its number to a ledger file as it runs. The hub
is stopped (SIGTERM) and started again when a third and when two thirds of the jobs
have been submitted; submissions made while it is away are retried. At the end:

- completions recorded: jobs the hub shows ``succeeded`` (target: exactly ``--jobs``);
- runs: ledger lines per job (target: every job exactly once, none twice);
- ``ended`` reports applied per job, from the hub's event log (target: one each).

Run: ``.venv/bin/python benchmarks/runner_exactly_once.py [--jobs N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter

from harness import Reaper, machine, progress, retried, sigterm_as_interrupt
from runner_common import free_port, hub_on, start_runner, submit, wait_ready

from backend.client import Follower, HubClient

RUNNERS = ("r1", "r2", "r3", "r4")
CONFIG = {"heartbeat_s": 2.0, "report_interval_s": 0.2, "retry_s": 1.0}


async def run(reaper: Reaper, jobs: int) -> dict[str, object]:
    port = free_port()
    hub = await hub_on(reaper, port)
    ledger = reaper.root / "ledger.txt"
    started = time.monotonic()
    # The hub comes back on the same port with the same admin.token, so one client
    # serves across its restarts (a call on a connection of the old hub fails as
    # unreachable, and ``submit`` retries it).
    async with hub.client(timeout=10) as client:
        for name in RUNNERS:
            await start_runner(reaper, client, hub, name, CONFIG)
        await wait_ready(client, RUNNERS)
        ids: list[str] = []
        restarts = {jobs // 3, 2 * jobs // 3}
        for i in range(jobs):
            if i in restarts:
                progress(f"{i} submitted: restarting the hub")
                reaper.stop(hub.proc)
                reaper.forget(hub.proc)
                hub = await hub_on(reaper, port)
            ids.append(await submit(client, [
                "/bin/sh", "-c", f"echo {i} >> {ledger}"], needs={"cpus": 0.25}))
        progress(f"{jobs} submitted; waiting for them to finish")
        deadline = time.monotonic() + max(120.0, jobs * 0.5)
        while True:
            views = await retried(client.jobs)
            states = Counter(v["state"] for v in views)
            if states["queued"] + states["running"] == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        ended = await ended_reports(client)
    runs = Counter(ledger.read_text().split()) if ledger.exists() else Counter()
    return {
        "jobs": jobs, "runners": len(RUNNERS), "hub_restarts": 2,
        "seconds": round(time.monotonic() - started, 1),
        "succeeded": states["succeeded"], "other_states": {
            k: v for k, v in states.items() if k != "succeeded"},
        "ran_once": sum(1 for i in range(jobs) if runs[str(i)] == 1),
        "ran_twice_or_more": sum(1 for i in range(jobs) if runs[str(i)] > 1),
        "never_ran": sum(1 for i in range(jobs) if runs[str(i)] == 0),
        "ended_applied_twice": sum(1 for n in ended.values() if n > 1),
        "machine": machine(),
    }


async def ended_reports(client: HubClient) -> Counter[str]:
    """``ended`` reports applied per job, read from the event log from its start up to the
    newest event the hub holds once every job has ended."""
    found: Counter[str] = Counter()
    newest = (await retried(client.about)).last_event_id
    events = client.events(Follower(0))
    async with contextlib.aclosing(events):
        async for record in events:
            event = record.data
            if event["type"] == "job.report" and event["data"].get("event") == "ended":
                found[event["subject"]] += 1
            if record.id >= newest:
                break
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sigterm_as_interrupt()
    with Reaper() as reaper:
        result = asyncio.run(run(reaper, args.jobs))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['jobs']} jobs over {result['runners']} runners, hub restarted twice, "
              f"{result['seconds']} s: succeeded {result['succeeded']} "
              f"(other {result['other_states'] or 'none'}); ran once {result['ran_once']}, "
              f"twice or more {result['ran_twice_or_more']}, never {result['never_ran']}; "
              f"ended applied twice {result['ended_applied_twice']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
