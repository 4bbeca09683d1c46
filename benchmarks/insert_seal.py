"""Render (c) through the sealed insert link against the plain one, in the same run.

A driver on another machine seals its insert link: every block is encrypted and
authenticated (``backend/protocol/insertseal.py``). This measures what that costs, on one
machine so that only the sealing differs: a ``controlroom --headless`` hub, one engine,
and two drivers with the same two fixed instances (a compressor and a tape saturator),
one plain (loopback) and one with ``insert_seal: "on"``. The task is scenario (c) of
``benchmarks/task_e2e.py``: 32 stereo 48 kHz tracks with one EQ band each, track 0
through the compressor and track 1 through the tape, rendered to 24-bit WAV; from
``POST .../render`` to ``done``. Renders alternate plain, sealed, plain, ... so that the
machine's drift affects both alike; the best of each is compared. Target: sealed within
15 % of plain. The two files are also compared: they must be bit-identical.

Run: ``.venv/bin/python benchmarks/insert_seal.py [--repeats N] [--seconds S] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import Reaper, progress, sigterm_as_interrupt, spawn_agent, start_hub
from render_speed import generate_inputs, task
from task_e2e import reserve_ready, wait_up

from backend.client import HubClient

TARGET_OVERHEAD = 0.15


def driver_config(prefix: str, sealed: bool) -> dict[str, Any]:
    return {"insert_seal": "on" if sealed else "auto", "instances": [
        {"id": f"{prefix}.comp", "model": "compressor",
         "params": {"threshold_db": -20.0, "ratio": 3.0}},
        {"id": f"{prefix}.tape", "model": "saturator", "params": {"drive_db": 4.0}},
    ]}


def spec_on(paths: Sequence[Path], block_size: int, driver: str, prefix: str
            ) -> dict[str, Any]:
    spec: dict[str, Any] = task(paths, block_size, "eq").model_dump(mode="json")
    for i, instance in enumerate(driver_config(prefix, False)["instances"]):
        spec["tracks"][i]["chain"].append(instance["id"])
        spec["instances"][instance["id"]] = {"model": instance["model"],
                                             "params": instance["params"],
                                             "location": {"driver": driver}}
    return spec


async def render_once(client: HubClient, tid: str, seconds: float, into: Path
                      ) -> tuple[float, str]:
    started = time.monotonic()
    rid = await client.render(tid, "wav24")
    await client.wait_render(tid, rid, within_s=600, poll=0.02)
    speed = seconds / (time.monotonic() - started)
    path = await client.download(tid, rid, into / f"{rid}.wav")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.unlink()
    return speed, digest


async def measure(args: argparse.Namespace, reaper: Reaper) -> dict[str, Any]:
    media = reaper.root / "media"
    media.mkdir()
    progress(f"generating {args.tracks} tracks of {args.seconds:g} s ...")
    paths = await asyncio.to_thread(generate_inputs, media, args.tracks, args.seconds)
    hub = await start_hub(reaper)
    drivers = {"plain": ("bench-plain", "plain"), "sealed": ("bench-sealed", "sealed")}
    async with hub.client(timeout=60) as client:
        await spawn_agent(reaper, hub, client, "engine", "bench-engine")
        for kind, (name, prefix) in drivers.items():
            config = reaper.root / f"{name}.json"
            config.write_text(json.dumps(driver_config(prefix, kind == "sealed")))
            await spawn_agent(reaper, hub, client, "driver", name, "--config", str(config))
        for name in ("bench-engine", "bench-plain", "bench-sealed"):
            await wait_up(client, name, 30)
        tasks = {kind: await reserve_ready(client, spec_on(paths, args.block_size, *pair))
                 for kind, pair in drivers.items()}
        speeds: dict[str, list[float]] = {"plain": [], "sealed": []}
        digests: dict[str, set[str]] = {"plain": set(), "sealed": set()}
        for i in range(args.repeats):
            for kind in ("plain", "sealed"):
                speed, digest = await render_once(client, tasks[kind], args.seconds,
                                                  reaper.root)
                speeds[kind].append(speed)
                digests[kind].add(digest)
                progress(f"  {kind} render {i + 1}: {speed:.1f}x real time")
        for tid in tasks.values():
            await client.release(tid)
    engine_log = (reaper.root / "logs" / "bench-engine.log").read_text()
    plain, sealed = max(speeds["plain"]), max(speeds["sealed"])
    overhead = plain / sealed - 1.0
    return {
        "tracks": args.tracks, "seconds": args.seconds, "block_size": args.block_size,
        "plain_x": [round(x, 1) for x in speeds["plain"]],
        "sealed_x": [round(x, 1) for x in speeds["sealed"]],
        "best_plain_x": round(plain, 1), "best_sealed_x": round(sealed, 1),
        "sealed_time_overhead": round(overhead, 3), "target": TARGET_OVERHEAD,
        "bit_identical": len(digests["plain"] | digests["sealed"]) == 1,
        "sealed_link_used": "bench-sealed go over its direct link" in engine_log
                            and ", sealed)" in engine_log,
        "met": overhead <= TARGET_OVERHEAD,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tracks", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--block-size", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    sigterm_as_interrupt()
    with Reaper(keep=args.keep) as reaper:
        results = asyncio.run(measure(args, reaper))
    print(json.dumps(results, indent=2), file=sys.stdout if args.json else sys.stderr)
    return 0 if results["met"] and results["bit_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
