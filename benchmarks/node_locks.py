"""100 concurrent runs, each waiting on a lock, answered by a script.

A real hub and ``agent node`` process. The script launches ``--runs`` runs of a flow that
opens one lock, waits until every run is ``locked``, then answers all locks at once
(``POST .../candidate``), and checks that every answer was released (200) and every run
ended ``done``. Reported: time to launch, time until all were locked, the answer round
trips, time until all were done, and the node's memory and CPU (the node process alone,
and the node with all its workers, which are separate processes by design).

Run: ``.venv/bin/python benchmarks/node_locks.py [--runs N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import psutil
from harness import Reaper, machine, progress, sigterm_as_interrupt, start_hub
from node_common import kill_workers, node_client, start_node


def usage(pid: int, workers: list[int]) -> dict[str, float]:
    node = psutil.Process(pid)
    rss_workers = 0
    for w in workers:
        try:
            rss_workers += psutil.Process(w).memory_info().rss
        except psutil.Error:
            pass
    cpu = node.cpu_times()
    return {"node_rss_mib": round(node.memory_info().rss / 2**20, 1),
            "workers_rss_mib": round(rss_workers / 2**20, 1),
            "node_cpu_s": round(cpu.user + cpu.system, 2)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with Reaper() as reaper:
        hub = await start_hub(reaper)
        node = await start_node(reaper, hub)
        out: dict[str, Any] = {"machine": machine(), "runs": args.runs}
        try:
            connections = args.runs + 10  # every launch and every answer at once
            async with node_client(node, 120, connections) as client:
                out["idle"] = usage(node.pid, [])
                t0 = time.monotonic()
                fids = list(await asyncio.gather(*(
                    client.start("await-approval", {}) for _ in range(args.runs))))
                out["launch_s"] = round(time.monotonic() - t0, 3)
                progress(f"launched {len(fids)} runs in {out['launch_s']} s")
                states: dict[str, Any] = {}
                while True:
                    states = {f: await client.state(f) for f in fids}
                    if all(s["state"] == "locked" for s in states.values()):
                        break
                    await asyncio.sleep(0.2)
                out["all_locked_s"] = round(time.monotonic() - t0, 3)
                pids = [s["pid"] for s in states.values()]
                out["locked"] = usage(node.pid, pids)
                progress(f"all locked after {out['all_locked_s']} s; answering")
                cpu_before = out["locked"]["node_cpu_s"]

                # Fresh connections: the server closes keep-alive ones idle for 5 s, and a
                # POST sent on one just as it closes fails (the usual keep-alive race).
                async with node_client(node, 120,
                                       connections=connections) as answering:

                    async def answer(fid: str) -> tuple[int, float]:
                        lid = states[fid]["locks"][0]["lid"]
                        started = time.monotonic()
                        verdict = await answering.submit(fid, lid, {"ok": True})
                        return verdict.status, time.monotonic() - started

                    t1 = time.monotonic()
                    answers = await asyncio.gather(*(answer(f) for f in fids))
                out["answer_all_s"] = round(time.monotonic() - t1, 3)
                codes = [c for c, _ in answers]
                rtts = sorted(rtt * 1000 for _, rtt in answers)
                out["released"] = codes.count(200)
                out["answer_ms"] = {"p50": round(statistics.median(rtts), 1),
                                    "max": round(rtts[-1], 1)}
                while True:
                    done = [(await client.state(f))["state"] for f in fids]
                    if all(s in ("done", "error", "interrupted") for s in done):
                        break
                    await asyncio.sleep(0.1)
                out["all_done_s"] = round(time.monotonic() - t1, 3)
                out["done"] = done.count("done")
                after = usage(node.pid, [])
                out["node_cpu_s_answering"] = round(after["node_cpu_s"] - cpu_before, 2)
                out["after"] = after
        finally:
            kill_workers(node.data_dir)
    return out


if __name__ == "__main__":
    sigterm_as_interrupt()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    print(json.dumps(result, indent=2))
