"""The farm: one render split over runner processes and the engine, end to end.

Everything is the product as it runs, on loopback: a ``controlroom --headless`` hub, one
``controlroom agent engine`` and ``max(--runners)`` ``controlroom agent runner``
processes. The task is ``--tracks`` (128) stereo 48 kHz 16-bit WAV tracks of
``--seconds`` (30) each, one peaking EQ band per track (``render_speed.py``'s scenario
(b), all dynamic), read by absolute path by the engine and by the runners' jobs alike.
128 tracks are 4 chunks of the summation tree (32 tracks each, ``mix_layout``).

Rendered to wav24, each the best of ``--repeat`` (3) runs after a warm-up:

- **the engine alone**, with ``render_processes`` 2 (its default) and 1;
- **the farm** (``"farm": {"runners": N}``) for each N of ``--runners`` (1,2,4), the
  engine at ``render_processes`` 1 (a farm part always renders in one process, on the
  engine as in a runner's job).

For each: the wall time from ``POST .../render`` until this script holds the hub's
``task.render_done`` event (pushed on the event stream, not polled), as a multiple of
real time, and the machine's busy CPU seconds over that wall (all processes: on 2 cores
the split cannot beat the cores, this shows what the split costs). For the best run,
where the time went, per part, from the hub's events (``render_part``, the jobs'
``report`` events with the runner's clock; one machine, one clock): *dispatch* (POST to
the part's process started, or to the engine being told), *start-up* (to the first
rendered block, extrapolated back from the progress reports: Python start, imports,
opening 32 files per chunk), *render*, *upload* (the part's program ended to the hub
holding its streams: reading them back, HTTP PUT of each chunk as a job artifact or the
engine's websocket frames, the end report), and the hub's *assembly* (last part in to
the WAV written). Also the bytes the parts send back (768,000 B per chunk and second of
audio, stereo float64) against the engine's own wav24 upload, and what they would take on
1 GbE (~110 MB/s). Every farm file is checked byte for byte (sha256) against the
engine's own render.

Run: ``.venv/bin/python benchmarks/farm_render.py [--runners 1,2,4] [--seconds 30]
[--tracks 128] [--repeat 3] [--json] [--keep]`` (about 2.5 minutes on 2 cores; the
inputs take ~740 MB in a temporary directory, deleted afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from harness import (
    EventStream,
    HubProcess,
    Observed,
    Reaper,
    machine,
    progress,
    sigterm_as_interrupt,
    spawn_agent,
    start_hub,
    table,
)
from render_speed import generate_inputs, task
from runner_common import start_runner, wait_ready
from task_e2e import wait_up

from backend.client import HubClient

RATE = 48000
ENGINE = "bench-engine"
#: One chunk's stream: stereo float64 (backend/audio/farm.py).
CHUNK_BYTES_PER_S = RATE * 2 * 8
#: The engine's own render file, wav24: what an engine-alone render uploads to the hub.
WAV24_BYTES_PER_S = RATE * 2 * 3
GBE_MB_S = 110.0
#: Fast reports (progress every 0.1 s) so the breakdown has points to fit; the rest as a
#: runner is usually configured.
RUNNER_CONFIG: dict[str, Any] = {"heartbeat_s": 5.0, "report_interval_s": 0.1,
                                 "retry_s": 1.0}
ROOT = Path(__file__).resolve().parent.parent
FINAL = ("task.render_done", "task.render_failed", "task.render_cancelled")


# --- the system under test ----------------------------------------------------------------

async def set_render_processes(client: HubClient, processes: int) -> None:
    await client.put_config(ENGINE, {"render_processes": processes})
    await asyncio.sleep(2.0)  # the engine starts its forkserver on the new config


def busy_cpu_s() -> float:
    """The machine's busy CPU seconds so far (every core, every process), /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def job_start_floor(repeat: int) -> dict[str, float]:
    """What a runner's render job pays before it renders anything, alone on the machine:
    a Python interpreter started and the modules a render job imports (best of
    ``repeat``; wall and the child's CPU). Not the shim (stdlib only, ``python -S``)."""
    code = ("import backend.runner.render_job, backend.audio, backend.audio.farm, "
            "backend.audio.eq, scipy.signal, soundfile")
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        walls.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {"wall_s": round(min(walls), 3), "cpu_s": round(min(cpus), 3)}


# --- one render ----------------------------------------------------------------------------

async def render_once(client: HubClient, events: EventStream, tid: str, scratch: Path,
                      farm: dict[str, Any] | None) -> dict[str, Any]:
    mark = events.mark()
    cpu0 = busy_cpu_s()
    posted = time.time()
    rid = await client.render(tid, "wav24", farm=farm)

    def ended(event: Observed) -> bool:
        return event.type in FINAL and event.subject == tid and \
            event.data.get("render_id") == rid

    final = await events.wait_for(ended, mark, within_s=600)
    wall = final.arrived_wall - posted
    cpu = busy_cpu_s() - cpu0
    view = await client.render_state(tid, rid)
    if final.type != "task.render_done":
        raise RuntimeError(f"render {rid} ended {final.type}: {view.get('error')}; the "
                           f"farm: {json.dumps(view.get('farm'))}")
    jobs = {}
    for part in (view.get("farm") or {}).get("parts", []):
        if part.get("job"):
            jobs[part["job"]] = await client.job(part["job"])
    out = scratch / f"{rid}.wav"
    await client.download(tid, rid, out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    size = out.stat().st_size
    out.unlink()
    seen = [e for e in events.since(mark) if e.arrived_wall <= final.arrived_wall + 1]
    return {"render_id": rid, "wall_s": wall, "busy_cpu_s": cpu, "sha256": digest,
            "bytes": size, "posted": posted, "view": view, "jobs": jobs,
            "breakdown": breakdown(posted, rid, view, jobs, seen)}


def fitted_start(points: Sequence[tuple[float, float]]) -> float | None:
    """When progress was 0, extrapolated from (time, progress) points below 1.0."""
    inside = sorted((t, p) for t, p in points if 0.0 < p < 1.0)
    if len(inside) < 2 or inside[-1][1] <= inside[0][1] or inside[-1][0] <= inside[0][0]:
        return None
    (t0, p0), (t1, p1) = inside[0], inside[-1]
    rate = (p1 - p0) / (t1 - t0)
    return t0 - p0 / rate


def breakdown(posted: float, rid: str, view: dict[str, Any], jobs: dict[str, Any],
              seen: Sequence[Observed]) -> dict[str, Any]:
    """Where the render's time went, in seconds since the POST (hub and runner clocks:
    one machine)."""
    mine = [e for e in seen if e.data.get("render_id") == rid]
    done_at = next((e.ts for e in mine if e.type == "task.render_done"), None)

    def since(t: float | None) -> float | None:
        return None if t is None else round(t - posted, 3)

    def span(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(b - a, 3)

    farm = view.get("farm")
    if farm is None:  # the engine alone: told, rendering, uploading its wav24
        begun = next((e.ts for e in mine if e.type == "task.render"), None)
        points = [(e.ts, float(e.data["progress"])) for e in mine
                  if e.type == "task.render_progress"]
        rendered = next((t for t, p in points if p >= 1.0), None)
        start = fitted_start(points)
        return {"parts": [{"name": "engine", "chunks": "all", "dispatch_s": since(begun),
                           "startup_s": span(begun, start), "render_s": span(start, rendered),
                           "process_s": span(begun, rendered),
                           "upload_s": span(rendered, done_at),
                           "done_at_s": since(done_at)}],
                "done_at_s": since(done_at)}
    parts = []
    last_in = None
    for part in farm["parts"]:
        index = part["part"]
        rows = [e for e in mine if e.type == "task.render_part" and e.data.get("part") == index]
        done = next((e.ts for e in rows if e.data.get("part_state") == "done"), None)
        last_in = done if last_in is None or (done is not None and done > last_in) else last_in
        row: dict[str, Any] = {"name": part["name"], "chunks": part["chunks"],
                               "state": part["state"], "done_at_s": since(done)}
        if part.get("job"):
            job = jobs.get(part["job"], {})
            reports = [e for e in seen if e.type == "job.report" and e.subject == part["job"]]
            points = [(float(e.data["at"]), float(e.data["progress"])) for e in reports
                      if e.data.get("event") == "progress" and "progress" in e.data]
            started = job.get("started_at")
            exited = None if started is None or job.get("duration_s") is None else \
                started + float(job["duration_s"])
            start = fitted_start(points)
            row.update({"job": part["job"], "dispatch_s": since(started),
                        "startup_s": span(started, start), "render_s": span(start, exited),
                        "process_s": job.get("duration_s"), "upload_s": span(exited, done)})
        else:  # the engine's part: told when the render starts, streams over its channel
            told = next((e.ts for e in rows if e.data.get("part_state") == "running"), None)
            points = [(e.ts, float(e.data["progress"])) for e in rows
                      if "progress" in e.data and e.data.get("part_state") is None]
            rendered = next((t for t, p in points if p >= 1.0), None)
            start = fitted_start(points)
            row.update({"dispatch_s": since(told), "startup_s": span(told, start),
                        "render_s": span(start, rendered), "process_s": span(told, rendered),
                        "upload_s": span(rendered, done)})
        parts.append(row)
    assembly = [e.ts for e in mine if e.type == "task.render_assembly"]
    return {"parts": parts, "last_part_in_s": since(last_in),
            "assembly_s": span(last_in, done_at), "assembly_events": len(assembly),
            "done_at_s": since(done_at)}


# --- the run -------------------------------------------------------------------------------

def scenarios(runners: Sequence[int]) -> list[tuple[str, int, int | None]]:
    """(name, engine render_processes, farm runners or None), in the order they run."""
    rows: list[tuple[str, int, int | None]] = [("engine alone, 2 processes", 2, None),
                                               ("engine alone, 1 process", 1, None)]
    rows += [(f"farm, {n} runner{'s' if n > 1 else ''}", 1, n) for n in runners]
    return rows


async def measure(args: argparse.Namespace, reaper: Reaper) -> dict[str, Any]:
    began = time.monotonic()
    media = reaper.root / "media"
    media.mkdir()
    scratch = reaper.root / "downloads"
    scratch.mkdir()
    progress(f"generating {args.tracks} tracks of {args.seconds:g} s ...")
    paths = await asyncio.to_thread(generate_inputs, media, args.tracks, args.seconds)
    await asyncio.to_thread(os.sync)  # written back now, not while the renders read them
    progress("timing a render job's interpreter start and imports ...")
    floor = await asyncio.to_thread(job_start_floor, args.repeat)
    hub = await start_hub(reaper)
    results: dict[str, Any] = {"tracks": args.tracks, "seconds": args.seconds,
                               "runners": args.runners, "repeat": args.repeat,
                               "job_start_floor": floor}
    events = EventStream(hub)
    await events.start()
    try:
        async with hub.client(timeout=120) as client:
            results.update(await run_all(args, reaper, hub, client, events, paths, scratch,
                                         media))
    finally:
        await events.close()
    results["machine"] = machine()
    results["run_s"] = round(time.monotonic() - began, 1)
    return results


async def run_all(args: argparse.Namespace, reaper: Reaper, hub: HubProcess,
                  client: HubClient, events: EventStream, paths: Sequence[Path],
                  scratch: Path, media: Path) -> dict[str, Any]:
    count = max(args.runners)
    width = len(str(count))
    names = [f"runner-{i:0{width}d}" for i in range(1, count + 1)]
    progress(f"starting the engine and {count} runner(s) ...")
    await spawn_agent(reaper, hub, client, "engine", ENGINE)
    for name in names:
        await start_runner(reaper, client, hub, name,
                           {**RUNNER_CONFIG, "media_dir": str(media)})
    await wait_up(client, ENGINE, 60)
    await wait_ready(client, names, 60)
    spec = task(paths, 1024, "eq").model_dump(mode="json")
    tid = str((await client.reserve(spec, engine=ENGINE))["id"])
    await client.wait_task(tid, within_s=60, poll=0.05)

    plan = scenarios(args.runners)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in plan}
    processes = None
    # The warm-up (not counted): the page cache holds the inputs, every runner has
    # rendered a part once (its interpreter's files cached too).
    for name, wanted, farm in [plan[0], (f"farm, {count} runners", 1, count)]:
        if processes != wanted:
            await set_render_processes(client, wanted)
            processes = wanted
        progress(f"warm-up: {name} ...")
        await render_once(client, events, tid, scratch,
                          None if farm is None else {"runners": farm})
    # The engine at 2 processes first (a config change restarts its forkserver), then the
    # others interleaved, so that a disturbance of the machine spreads over them all.
    order = [plan[0]] * args.repeat + [row for _ in range(args.repeat) for row in plan[1:]]
    for name, wanted, farm in order:
        if processes != wanted:
            await set_render_processes(client, wanted)
            processes = wanted
        run = await render_once(client, events, tid, scratch,
                                None if farm is None else {"runners": farm})
        runs[name].append(run)
        progress(f"  {name}: {run['wall_s']:.2f} s = "
                 f"{args.seconds / run['wall_s']:.1f}x real time")
    await client.release(tid)

    reference = runs[plan[1][0]][0]["sha256"]
    out: dict[str, Any] = {"chunks": None, "reference_sha256": reference, "scenarios": []}
    for name, wanted, farm in plan:
        all_runs = runs[name]
        best = min(all_runs, key=lambda r: r["wall_s"])
        identical = all(r["sha256"] == reference for r in all_runs)
        row: dict[str, Any] = {
            "name": name, "render_processes": wanted, "farm_runners": farm,
            "walls_s": [round(r["wall_s"], 3) for r in all_runs],
            "best_wall_s": round(best["wall_s"], 3),
            "best_x": round(args.seconds / best["wall_s"], 1),
            "busy_cpu_s": round(best["busy_cpu_s"], 2),
            "bytes": best["bytes"], "identical_to_engine": identical,
            "sha256": sorted({r["sha256"] for r in all_runs}),
            "breakdown": best["breakdown"],
        }
        audio_s = args.seconds
        view = best["view"].get("farm")
        if view is not None:
            out["chunks"] = view["chunks"]
            parts = view["parts"]
            streamed = sum(len(p["chunks"]) for p in parts if p["state"] == "done")
            by_runners = sum(len(p["chunks"]) for p in parts
                             if p["state"] == "done" and p["name"] != "engine")
            row["parts"] = [{k: p[k] for k in ("name", "chunks", "state", "reason")}
                            for p in parts]
            row["skipped"] = view.get("skipped") or {}
            row["streams"] = {
                "chunks_streamed": streamed, "by_runners": by_runners,
                "bytes_per_audio_s": streamed * CHUNK_BYTES_PER_S,
                "runner_bytes_per_audio_s": by_runners * CHUNK_BYTES_PER_S,
                "total_mb": round(streamed * CHUNK_BYTES_PER_S * audio_s / 1e6, 1),
                "runner_mb": round(by_runners * CHUNK_BYTES_PER_S * audio_s / 1e6, 1),
                "on_1gbe_s": round(streamed * CHUNK_BYTES_PER_S * audio_s / 1e6 / GBE_MB_S,
                                   2),
            }
        else:
            row["streams"] = {"bytes_per_audio_s": WAV24_BYTES_PER_S,
                              "total_mb": round(best["bytes"] / 1e6, 1),
                              "on_1gbe_s": round(best["bytes"] / 1e6 / GBE_MB_S, 2)}
        out["scenarios"].append(row)
    out["all_identical"] = all(s["identical_to_engine"] for s in out["scenarios"])
    out["input_mb"] = round(sum(p.stat().st_size for p in paths) / 1e6, 1)
    return out


# --- the report ----------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(results: dict[str, Any]) -> str:
    seconds = results["seconds"]
    chunks = results["chunks"]
    lines = [f"Farm render: {results['tracks']} stereo tracks x {seconds:g} s, one peaking EQ "
             f"band each (48 kHz 16-bit WAV in, wav24 out); {chunks} chunk(s) of the "
             f"summation tree; best of {results['repeat']} after a warm-up", ""]
    rows = [["scenario", "parts: chunks", "wall (best)", "x real time", "CPU busy",
             "all walls", "same file"]]
    for s in results["scenarios"]:
        parts = "engine: all" if "parts" not in s else "  ".join(
            f"{p['name'].replace('runner-', 'r')}: {','.join(map(str, p['chunks'])) or '-'}"
            for p in s["parts"])
        rows.append([s["name"], parts, f"{s['best_wall_s']:.2f} s", f"{s['best_x']:.1f}x",
                     f"{s['busy_cpu_s']:.1f} s",
                     " ".join(f"{w:.2f}" for w in s["walls_s"]),
                     "yes" if s["identical_to_engine"] else "NO"])
    lines += list(table(rows))
    lines += ["", "CPU busy: the machine's busy CPU seconds over the best run's wall "
              f"(all processes; {results['machine']['cpus']} cores)."]
    lines += ["", "Where the time goes (best run; seconds; 'at' counts from the POST):"]
    rows = [["scenario / part", "chunks", "dispatch at", "part wall", "= start-up",
             "+ render", "upload", "in at"]]
    for s in results["scenarios"]:
        b = s["breakdown"]
        rows.append([s["name"], "", "", "", "", "", "", ""])
        for p in b["parts"]:
            chunk_list = p["chunks"] if isinstance(p["chunks"], str) else \
                (",".join(map(str, p["chunks"])) or "none")
            rows.append([f"  {p['name']}", chunk_list, fmt(p.get("dispatch_s")),
                         fmt(p.get("process_s")), fmt(p.get("startup_s")),
                         fmt(p.get("render_s")), fmt(p.get("upload_s")),
                         fmt(p.get("done_at_s"))])
        if "assembly_s" in b:
            rows.append(["  hub: assembly (sum, wav24)", "all", fmt(b["last_part_in_s"]),
                         fmt(b["assembly_s"]), "", "", "", fmt(b["done_at_s"])])
    lines += list(table(rows))
    lines += ["",
              "dispatch at: the part's process started (runner: the job's started_at; the "
              "engine: told to render). part wall: the runner job's duration_s (its "
              "process, start to exit), or the engine from told to its last progress; "
              "start-up: to the first rendered block, extrapolated back from the progress "
              "reports (Python start, imports, opening the chunks' files); render: the "
              "rest. upload: from there to the hub holding the part's streams (runner: "
              "artifacts read and PUT, end report; engine: websocket frames). in at: since "
              "the POST (the engine alone: its render done). assembly: last part in to the "
              "render done (the hub sums the streams into the WAV)."]
    floor = results["job_start_floor"]
    lines += ["", f"For scale: a render job's Python start and imports alone, on the idle "
              f"machine, take {floor['wall_s']:.2f} s ({floor['cpu_s']:.2f} s of CPU); "
              "N parts starting at once share the cores for it."]
    lines += ["", "Bytes sent back to the hub (stereo float64 per chunk: "
              f"{CHUNK_BYTES_PER_S:,} B per second of audio):"]
    rows = [["scenario", "streams", "per s of audio", "this render", "of it by runners",
             "on 1 GbE (~110 MB/s)"]]
    for s in results["scenarios"]:
        st = s["streams"]
        if "chunks_streamed" in st:
            rows.append([s["name"], f"{st['chunks_streamed']} chunks",
                         f"{st['bytes_per_audio_s'] / 1e6:.3f} MB",
                         f"{st['total_mb']:.1f} MB", f"{st['runner_mb']:.1f} MB",
                         f"{st['on_1gbe_s']:.2f} s"])
        else:
            rows.append([s["name"], "wav24 file", f"{st['bytes_per_audio_s'] / 1e6:.3f} MB",
                         f"{st['total_mb']:.1f} MB", "-", f"{st['on_1gbe_s']:.2f} s"])
    lines += list(table(rows))
    lines += ["", f"(The inputs are {results['input_mb']:.0f} MB of 16-bit WAV: read here by "
              "path; a runner on another machine fetches its chunks' files by hash into its "
              "media cache once.)"]
    verdict = "yes" if results["all_identical"] else "NO"
    lines += ["", f"every file byte-identical to the engine alone's (sha256 "
              f"{results['reference_sha256'][:16]}...): {verdict}"]
    skipped = {k: v for s in results["scenarios"] for k, v in (s.get("skipped") or {}).items()}
    if skipped:
        lines.append("runners skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    lines.append(f"machine: {results['machine']}")
    lines.append(f"benchmark run time: {results['run_s']:.0f} s")
    return "\n".join(lines)


def stop_jobs() -> None:
    """Kill the runners' job processes still running (after an error or Ctrl-C): a job's
    shim runs in its own session, to outlive its runner's restart, so stopping the
    runners does not end it. Only this process's own descendants are looked at."""
    try:
        below = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for proc in below:
        with contextlib.suppress(psutil.Error):
            line = " ".join(proc.cmdline())
            if "backend.runner.render_job" in line or "runner/shim" in line \
                    or "backend.runner.shim" in line:
                proc.kill()


def runner_counts(text: str) -> list[int]:
    counts = sorted({int(x) for x in text.split(",") if x.strip()})
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("--runners takes counts >= 1, e.g. 1,2,4")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runners", type=runner_counts, default=[1, 2, 4],
                        help="farm sizes to measure, comma-separated (default 1,2,4); "
                        "max(N) runner processes are started")
    parser.add_argument("--tracks", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary dir (hub data, logs, inputs)")
    args = parser.parse_args(argv)
    sigterm_as_interrupt()
    with Reaper(keep=args.keep) as reaper:
        try:
            results = asyncio.run(measure(args, reaper))
        finally:
            stop_jobs()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(report(results))
    return 0 if results["all_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
