"""Audio tasks through real processes: render speed with fixed instances, and real time.

Everything is the product as it runs: a ``controlroom --headless`` hub, a
``controlroom agent engine`` and a ``controlroom agent driver`` hosting two fixed
instances (a compressor and a tape saturator), all on loopback.

- **(c) render with fixed instances**: 32 stereo 48 kHz WAV tracks of 60 s, one dynamic
  peaking EQ band per track, and the two fixed instances on the driver (track 0 through
  the compressor, track 1 through the tape). Time from ``POST .../render`` to the render
  being ``done`` on the hub (the engine's render, every block through the driver and back,
  and the upload of the file to the hub), as a multiple of real time. Target >= 30x.
- **Real time**: the same 32 tracks and fixed instances at 512-sample blocks, played for
  ``--play-seconds`` (60 by default) while this script subscribes to the task's stream
  like a console would. A listener with an output buffer of 4 blocks starts playing 4
  blocks after the first one arrives; a block is *late* if it arrives after its turn.
  Target: 0 late blocks. Also the time from the play request to the first audio block at
  the subscriber (target <= 100 ms).

- **(d) gain and pan, end to end**: the same 32 tracks with a fader and a pan and no chain
  (``render_speed.py``'s scenario (a)) at the spec's default block size, 1024, through the
  hub and the engine (``render_processes`` 2): time from ``POST .../render`` to ``done``.
  In the same run, on the same files: the audio core alone (``render_speed.py`` (a) in
  this process, two processes at block 8192: the target is to be within 20 % of it),
  ``sox -m`` and ffmpeg's ``amix`` (the same gain per input, 24-bit WAV out; target: the
  product at least 8x faster than ``sox -m``). Install the peers with
  ``make benchmark-deps``; a missing one is reported and left out.

Run: ``.venv/bin/python benchmarks/task_e2e.py`` (about 3 minutes; ``--play-seconds``
and ``--seconds`` shorten it, ``--only mix`` runs (d) alone). ``--json`` prints the
results as JSON on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import Reaper, progress, sigterm_as_interrupt, spawn_agent, start_hub
from render_speed import generate_inputs, task, time_ffmpeg, time_render, time_sox

from backend.client import HubClient, HubError

RATE = 48000
DRIVER_CONFIG = {"instances": [
    {"id": "bench.comp", "model": "compressor",
     "params": {"threshold_db": -20.0, "ratio": 3.0}},
    {"id": "bench.tape", "model": "saturator", "params": {"drive_db": 4.0}},
]}


def spec_with_fixed(paths: Sequence[Path], block_size: int) -> dict[str, Any]:
    spec: dict[str, Any] = task(paths, block_size, "eq").model_dump(mode="json")
    for i, iid in enumerate(("bench.comp", "bench.tape")):
        spec["tracks"][i]["chain"].append(iid)
        model = DRIVER_CONFIG["instances"][i]
        spec["instances"][iid] = {"model": model["model"], "params": model["params"],
                                  "location": {"driver": "bench-driver"}}
    return spec


async def wait_up(client: HubClient, name: str, within: float) -> None:
    """Until the hub lists component ``name`` as up (404 until it first registers)."""
    deadline = time.monotonic() + within
    state = "unknown"
    while True:
        try:
            state = (await client.component(name))["state"]
        except HubError as exc:
            if exc.status != 404:
                raise
        if state == "up":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} still {state} after {within} s")
        await asyncio.sleep(0.02)


async def reserve_ready(client: HubClient, spec: dict[str, Any]) -> str:
    """Reserve a task and wait until engine and drivers have accepted it."""
    tid = str((await client.reserve(spec))["id"])
    await client.wait_task(tid, within_s=30, poll=0.02)
    return tid


async def measure(args: argparse.Namespace, reaper: Reaper) -> dict[str, Any]:
    media = reaper.root / "media"
    media.mkdir()
    progress(f"generating {args.tracks} tracks of {args.seconds:g} s ...")
    paths = await asyncio.to_thread(generate_inputs, media, args.tracks, args.seconds)
    hub = await start_hub(reaper)
    config = reaper.root / "driver.json"
    config.write_text(json.dumps(DRIVER_CONFIG))
    async with hub.client(timeout=60) as client:
        await spawn_agent(reaper, hub, client, "engine", "bench-engine")
        await spawn_agent(reaper, hub, client, "driver", "bench-driver", "--config", str(config))
        for name in ("bench-engine", "bench-driver"):
            await wait_up(client, name, 30)
        if args.render_processes is not None:
            await client.put_config("bench-engine",
                                    {"render_processes": args.render_processes})
            await asyncio.sleep(2.0)  # the engine starts its forkserver on the new config

        results: dict[str, Any] = {"tracks": args.tracks, "seconds": args.seconds}
        results["mix"] = await mix_end_to_end(client, paths, args, reaper.root)
        if args.only == "mix":
            return results
        # the same render with every instance in the engine, for the cost of the inserts
        dynamic = task(paths, args.block_size, "eq").model_dump(mode="json")
        did = await reserve_ready(client, dynamic)
        results["render_dynamic"] = await render_speed(client, did, args.seconds, args.repeats)
        await client.release(did)

        # (c) offline render through the driver
        tid = await reserve_ready(client, spec_with_fixed(paths, args.block_size))
        results["render_fixed"] = await render_speed(client, tid, args.seconds, args.repeats)
        results["render_fixed"]["target_x"] = 30.0
        await client.release(tid)

        # real time: play with a listener holding a 4-block buffer
        play_spec = spec_with_fixed(paths, args.play_block_size)
        play_spec["duration_s"] = min(args.play_seconds, args.seconds)
        tid = await reserve_ready(client, play_spec)
        results["play"] = await listen(client, tid, args.play_block_size,
                                       play_spec["duration_s"])
    return results


async def render_speed(client: HubClient, tid: str, seconds: float,
                       repeats: int) -> dict[str, Any]:
    speeds = []
    for i in range(repeats):
        started = time.monotonic()
        rid = await client.render(tid, "wav24")
        # polled every 20 ms, as before; raises HubError unless the render ends done
        await client.wait_render(tid, rid, within_s=600, poll=0.02)
        elapsed = time.monotonic() - started
        speeds.append(seconds / elapsed)
        progress(f"  render {i + 1}: {elapsed:.2f} s = {speeds[-1]:.1f}x real time")
    return {"speeds_x": [round(x, 1) for x in speeds], "best_x": round(max(speeds), 1),
            "best_wall_s": round(seconds / max(speeds), 3)}


async def mix_end_to_end(client: HubClient, paths: Sequence[Path], args: argparse.Namespace,
                         scratch: Path) -> dict[str, Any]:
    """(d): the product end to end, the core alone and the peers, on the same files."""
    progress("(d) gain and pan: through hub + engine at block 1024 ...")
    tid = await reserve_ready(client, task(paths, 1024, None).model_dump(mode="json"))
    product = await render_speed(client, tid, args.seconds, args.repeats)
    await client.release(tid)
    progress("(d) the audio core alone, two processes at block 8192 ...")
    core = await asyncio.to_thread(time_render, task(paths, 8192, None), scratch / "core.wav",
                                   args.repeats, None, 2)
    progress("(d) sox -m and ffmpeg amix ...")
    sox = await asyncio.to_thread(time_sox, paths, scratch / "sox.wav", args.repeats)
    ffmpeg = await asyncio.to_thread(time_ffmpeg, paths, scratch / "ffmpeg.wav", args.repeats)
    wall = product["best_wall_s"]
    out: dict[str, Any] = {
        "product": product,
        "core_two_processes_8192": {"wall_s": round(core["wall_s"], 3),
                                    "speed_x": round(core["speed"], 1)},
        "product_over_core": round(wall / core["wall_s"], 3),
        "target_over_core": 1.2,
    }
    for name, peer in (("sox", sox), ("ffmpeg_amix", ffmpeg)):
        if peer is None:
            progress(f"(d) {name} is not installed (make benchmark-deps): left out")
            continue
        out[name] = {"wall_s": round(peer["wall_s"], 3), "speed_x": round(peer["speed"], 1),
                     "version": peer["version"], "command": peer["command"]}
        out[f"product_faster_than_{name}"] = round(peer["wall_s"] / wall, 2)
    out["target_faster_than_sox"] = 8.0
    return out


async def listen(client: HubClient, tid: str, block: int, seconds: float) -> dict[str, Any]:
    from backend.protocol import frames

    arrivals: list[tuple[int, float]] = []
    progress(f"playing {seconds:g} s at {block}-sample blocks ...")
    async with client.task_stream(tid) as stream:
        requested = time.monotonic()
        await client.play(tid)
        end = requested + seconds + 5
        while time.monotonic() < end:
            try:
                item = await asyncio.wait_for(stream.recv(),
                                              max(0.01, end - time.monotonic()))
            except TimeoutError:
                break
            if item is None:
                break  # the hub closed the stream
            if isinstance(item, bytes):
                header, _ = frames.unpack(item)
                arrivals.append((int(header["seq"]), time.monotonic()))
            elif json.loads(item).get("type") == "play_failed":
                raise RuntimeError(f"play failed: {item}")
            if arrivals and arrivals[-1][0] * block >= seconds * RATE:
                break  # the whole program has arrived
    if not arrivals:
        raise RuntimeError("no audio block arrived")
    block_s = block / RATE
    first_seq, first_at = arrivals[0]
    start = first_at + 4 * block_s  # playback begins once 4 blocks are buffered
    late = [seq for seq, at in arrivals if at > start + (seq - first_seq) * block_s]
    worst = max(at - (start + (seq - first_seq) * block_s) for seq, at in arrivals)
    missing = arrivals[-1][0] - first_seq + 1 - len(arrivals)
    return {"block_size": block, "blocks": len(arrivals), "late_blocks": len(late),
            "missing_blocks": missing, "worst_margin_ms": round(worst * 1000, 2),
            "first_block_latency_ms": round((first_at - requested) * 1000, 2),
            "targets": {"late_blocks": 0, "first_block_latency_ms": 100}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tracks", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--block-size", type=int, default=8192)
    parser.add_argument("--play-block-size", type=int, default=512)
    parser.add_argument("--play-seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--render-processes", type=int, default=None, metavar="N",
                        help="set the engine's render_processes (default: its own default)")
    parser.add_argument("--only", choices=["mix"], default=None,
                        help="run only (d), the gain-and-pan render end to end")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    sigterm_as_interrupt()
    with Reaper(keep=args.keep) as reaper:
        results = asyncio.run(measure(args, reaper))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(json.dumps(results, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
