"""Starvation: a job keeps every core busy; does its runner still answer on time?

One hub (health checks every 1 s, 0.5 s timeout, down after 3 misses) and one runner with
a 1 s heartbeat (``--heartbeat``). The job starts one busy loop per core for
``--seconds`` (60 by default). Jobs run at nice 10 under their shim, the runner at its
normal priority, and health checks are answered on the runner's event loop, so the target
is 0 missed health checks and 0 missed heartbeats.

Measured from outside, as an operator would see it: ``component.state`` events for the
runner (any leaving ``up`` is a failure), the health round trip the hub last measured
(polled every 100 ms; above the 0.5 s timeout counts as a missed check) and the gaps
between heartbeats the hub received (a gap over 1.5 heartbeats counts as missed ones).

Run: ``.venv/bin/python benchmarks/runner_starvation.py [--seconds S] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time

from harness import EventStream, Reaper, machine, progress, sigterm_as_interrupt
from runner_common import free_port, hub_on, start_runner, submit, wait_ready

HEALTH_TIMEOUT_S = 0.5


def busy_argv(seconds: float) -> list[str]:
    return [sys.executable, "-c", "\n".join([
        "import multiprocessing as mp, os, time",
        "def spin(end):",
        "    while time.time() < end: pass",
        "if __name__ == '__main__':",
        f"    end = time.time() + {seconds}",
        "    ps = [mp.Process(target=spin, args=(end,)) for _ in range(os.cpu_count() or 1)]",
        "    [p.start() for p in ps]; [p.join() for p in ps]",
        "    print('progress 1.0')"])]


async def run(reaper: Reaper, seconds: float, heartbeat_s: float) -> dict[str, object]:
    hub = await hub_on(reaper, free_port())
    events = EventStream(hub)
    await events.start()
    async with hub.client(timeout=10) as client:
        await start_runner(reaper, client, hub, "r1", {"heartbeat_s": heartbeat_s,
                                                       "report_interval_s": 1.0})
        await wait_ready(client, ["r1"])
        await asyncio.sleep(2 * heartbeat_s)
        mark = events.mark()
        job_id = await submit(client, busy_argv(seconds), needs={"cpus": 0})
        beats: list[float] = []
        rtts: list[float] = []
        started = time.monotonic()
        state = "running"
        while state in ("queued", "running"):
            runner = await client.runner("r1")
            component = await client.component("r1")
            if runner["last_heartbeat"] and (not beats or runner["last_heartbeat"] != beats[-1]):
                beats.append(runner["last_heartbeat"])
            if component["rtt_ms"] is not None:
                rtts.append(component["rtt_ms"])
            state = (await client.job(job_id))["state"]
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        progress(f"job {state} after {elapsed:.1f} s")
    changes = [e for e in events.since(mark) if e.type == "component.state"
               and e.subject == "r1"]
    await events.close()
    missed_beats = sum(max(0, round((b - a) / heartbeat_s) - 1)
                       for a, b in itertools.pairwise(beats))
    return {
        "seconds": seconds, "cores": os.cpu_count(), "job_state": state,
        "state_changes": [f"{e.data['old']}->{e.data['new']}" for e in changes],
        "max_health_rtt_ms": round(max(rtts), 1) if rtts else None,
        "missed_health_checks": sum(1 for r in rtts if r > HEALTH_TIMEOUT_S * 1000),
        "heartbeats": len(beats), "missed_heartbeats": missed_beats,
        "machine": machine(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sigterm_as_interrupt()
    with Reaper() as reaper:
        result = asyncio.run(run(reaper, args.seconds, args.heartbeat))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"busy job on {result['cores']} cores for {result['seconds']:g} s "
              f"({result['job_state']}): state changes {result['state_changes'] or 'none'}, "
              f"missed health checks {result['missed_health_checks']} (max RTT "
              f"{result['max_health_rtt_ms']} ms), heartbeats {result['heartbeats']}, "
              f"missed {result['missed_heartbeats']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
