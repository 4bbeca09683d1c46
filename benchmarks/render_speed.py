"""How fast the audio core renders offline, against ``sox -m``, and how much memory it needs.

An engine renders a task "as fast as the chain allows"; these are the figures for chains
that run inside the engine (dynamic instances). The benchmark generates ``--tracks`` stereo
48 kHz 16-bit WAV files of ``--seconds`` each (pink-ish noise plus a tone per track, into a
temporary directory, deleted afterwards) and renders them with the real
``backend.audio.Graph`` + ``render`` to a 24-bit WAV, timing graph construction plus render
(the same work ``sox`` does: open, decode, mix, encode, write):

- **(a) gain and pan**: every track with a fader (-12 dB) and a pan, no chain; and, in the
  same run, ``sox -m -v 0.25 in1.wav ... -b 24 out.wav`` mixing the same files. Targets:
  faster than sox (ratio >= 1.0) and >= 300x real time.
- **(a') chain path**: the same with a 0 dB ``gain`` instance per track, to show what the
  per-instance path (float conversion, one ``process`` call per block) costs by itself.
- **(b) one peaking EQ band per track**, all dynamic. Target >= 50x real time. Also at the
  play block size (1024) for reference.
- **floors**: reading the inputs alone (the graph's own reader, no mixing or writing), and
  the EQ's ``lfilter`` calls alone (same number of samples, no I/O): what (a) and (b)
  cannot go below with libsndfile and scipy on this machine.
- **(c) fixed instances on an instance driver** is measured by the engineer who owns the
  driver proxy: pass ``--instance-factory package.module:function``, a callable
  ``(instance_id, InstanceSpec) -> Instance | None`` as ``Graph`` takes it; (c) then runs
  the (b) spec with every EQ declared on driver ``--driver`` and the factory in place.
  Without the flag (c) is listed as not measured.
- **memory**: a child process renders ``--minutes`` (10) of the (b) task, the 60 s files
  looping (``"loop": true``), and reports its peak RSS (``VmHWM``) and the RSS after
  imports, before the render. Target <= 300 MB. Looping the generated files keeps the disk
  footprint at 32 x 60 s (370 MB of PCM_16) instead of 3.7 GB, while still exercising the
  streaming file reader for the whole 10 minutes.

Each speed is the best of ``--repeats`` runs (the reference machine is 2 shared cores; the
best run is the least disturbed one). Speeds are audio duration over wall time.

Run: ``.venv/bin/python benchmarks/render_speed.py [--json] [--repeats N] [--block-size N]``
(``apt-get install sox`` for the comparison; without it the sox row is skipped). Exits 0
when every target is met, 1 when not.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import soundfile  # noqa: E402
from scipy.signal import lfilter  # noqa: E402

from backend.audio import Graph, InstanceFactory, TaskSpec, render  # noqa: E402
from backend.audio.biquad import rbj  # noqa: E402
from backend.audio.sources import AudioFileSource  # noqa: E402
from backend.audio.workers import TrackWorkers, prewarm  # noqa: E402

RATE = 48000
TARGET_A = 300.0
TARGET_B = 50.0
TARGET_MEMORY_MB = 300.0
TRACK_GAIN_DB = -12.0
WINDOW = {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"}


def log(message: str) -> None:
    """Progress on stderr, so ``--json`` output on stdout stays parseable."""
    print(message, file=sys.stderr, flush=True)


# --- inputs ---------------------------------------------------------------------------------

def generate_inputs(directory: Path, tracks: int, seconds: float) -> list[Path]:
    """``tracks`` stereo 16-bit WAV files: filtered noise plus a tone, different per track."""
    rng = np.random.default_rng(2026)
    frames = round(seconds * RATE)
    paths = []
    t = np.arange(frames) / RATE
    for i in range(tracks):
        noise = rng.standard_normal((frames, 2))
        noise[1:] += 0.9 * noise[:-1]  # a gentle low tilt, less harsh than white
        left = 0.05 * noise[:, 0] + 0.1 * np.sin(2 * np.pi * (110 + 37 * i) * t)
        right = 0.05 * noise[:, 1] + 0.1 * np.sin(2 * np.pi * (110 + 37 * i) * t + 0.3)
        path = directory / f"track{i:02d}.wav"
        soundfile.write(path, np.clip(np.stack([left, right], axis=1), -1, 1), RATE,
                        subtype="PCM_16")
        paths.append(path)
    return paths


def task(paths: Sequence[Path], block_size: int, chain: str | None, *, loop: bool = False,
         duration_s: float | None = None, driver: str | None = None) -> TaskSpec:
    """The benchmark task: one track per file, panned across, with ``chain`` per track."""
    tracks: list[dict[str, Any]] = []
    instances: dict[str, Any] = {}
    for i, path in enumerate(paths):
        track: dict[str, Any] = {
            "id": f"t{i}", "source": {"type": "file", "path": str(path), "loop": loop},
            "gain_db": TRACK_GAIN_DB, "pan": -1.0 + 2.0 * i / max(1, len(paths) - 1)}
        if chain is not None:
            iid = f"{chain}{i}"
            track["chain"] = [iid]
            params: dict[str, Any] = {"gain_db": 0.0}
            if chain == "eq":
                params = {"bands": [{"type": "peaking", "freq_hz": 200.0 + 150.0 * i,
                                     "gain_db": 3.0, "q": 1.0}]}
            location: Any = "dynamic" if driver is None else {"driver": driver}
            instances[iid] = {"model": chain, "params": params, "location": location}
        tracks.append(track)
    spec: dict[str, Any] = {"sample_rate": RATE, "block_size": block_size, "tracks": tracks,
                            "instances": instances, "window": WINDOW}
    if duration_s is not None:
        spec["duration_s"] = duration_s
    return TaskSpec.model_validate(spec)


# --- measurements ---------------------------------------------------------------------------

def time_render(spec: TaskSpec, out: Path, repeats: int,
                factory: InstanceFactory | None = None, processes: int = 1) -> dict[str, Any]:
    """Best-of-``repeats`` wall time of building the graph and rendering it to wav24."""
    walls = []
    frames = 0
    if processes > 1:
        prewarm(processes - 1)  # as the engine does: at start, not once per render
    for _ in range(repeats):
        began = time.perf_counter()
        with Graph(spec, instance_factory=factory, processes=processes,
                   workers=TrackWorkers) as graph:
            result = render(graph, out, "wav24")
        walls.append(time.perf_counter() - began)
        frames = result.frames
        out.unlink()
    audio = frames / RATE
    best = min(walls)
    return {"block_size": spec.block_size, "audio_s": audio, "wall_s": best,
            "walls_s": [round(w, 4) for w in walls], "speed": audio / best}


def time_read_floor(paths: Sequence[Path], block_size: int, repeats: int) -> dict[str, Any]:
    """Floor of (a): only reading every input block as the graph does (native, read-ahead)."""
    walls = []
    frames = 0
    for _ in range(repeats):
        began = time.perf_counter()
        sources = [AudioFileSource(path, RATE) for path in paths]
        frames = max(source.frames for source in sources)
        for _ in range(0, frames, block_size):
            for source in sources:
                source.read_raw(block_size)
        for source in sources:
            source.close()
        walls.append(time.perf_counter() - began)
    audio = frames / RATE
    return {"block_size": block_size, "audio_s": audio, "wall_s": min(walls),
            "walls_s": [round(w, 4) for w in walls], "speed": audio / min(walls)}


def time_lfilter_floor(tracks: int, seconds: float, block_size: int,
                       repeats: int) -> dict[str, Any]:
    """Floor of (b): only the EQ's ``lfilter`` calls (one band, stereo, per track and block)."""
    coefficients = rbj("peaking", 1000.0, 3.0, 1.0, RATE)
    b, a = np.array(coefficients.b), np.array(coefficients.a)
    block = np.random.default_rng(0).uniform(-0.5, 0.5, (block_size, 2))
    states = [np.zeros((2, 2)) for _ in range(tracks)]
    blocks = -(-round(seconds * RATE) // block_size)
    walls = []
    for _ in range(repeats):
        began = time.perf_counter()
        for _ in range(blocks):
            for i in range(tracks):
                _, states[i] = lfilter(b, a, block, axis=0, zi=states[i])
        walls.append(time.perf_counter() - began)
    audio = blocks * block_size / RATE
    return {"block_size": block_size, "audio_s": audio, "wall_s": min(walls),
            "walls_s": [round(w, 4) for w in walls], "speed": audio / min(walls)}


def time_sox(paths: Sequence[Path], out: Path, repeats: int) -> dict[str, Any] | None:
    """Best-of-``repeats`` wall time of ``sox -m`` mixing the same files to 24-bit WAV."""
    sox = shutil.which("sox")
    if sox is None:
        return None
    volume = f"{10 ** (TRACK_GAIN_DB / 20):.4f}"
    command = [sox, "-m"]
    for path in paths:
        command += ["-v", volume, str(path)]
    command += ["-b", "24", str(out)]
    version = subprocess.run([sox, "--version"], capture_output=True, text=True).stdout.strip()
    return time_peer(command, out, repeats, version,
                     "sox -m -v 0.2512 in1.wav ... -v 0.2512 inN.wav -b 24 out.wav")


def time_ffmpeg(paths: Sequence[Path], out: Path, repeats: int) -> dict[str, Any] | None:
    """Best-of-``repeats`` wall time of ffmpeg's ``amix`` on the same files, same gain.

    ``amix`` divides by the input count unless ``normalize=0``; with it, each input gets
    the track gain by a ``volume`` filter, as ``sox -v`` does.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    gain = 10 ** (TRACK_GAIN_DB / 20)
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    for path in paths:
        command += ["-i", str(path)]
    chains = "".join(f"[{i}:a]volume={gain:.4f}[v{i}];" for i in range(len(paths)))
    inputs = "".join(f"[v{i}]" for i in range(len(paths)))
    graph = f"{chains}{inputs}amix=inputs={len(paths)}:normalize=0:duration=longest"
    command += ["-filter_complex", graph, "-c:a", "pcm_s24le", str(out)]
    version = subprocess.run([ffmpeg, "-version"], capture_output=True,
                             text=True).stdout.split("\n", 1)[0]
    return time_peer(command, out, repeats, version,
                     "ffmpeg -i in1.wav ... -filter_complex "
                     "'[0:a]volume=0.2512[v0];...amix=inputs=N:normalize=0' "
                     "-c:a pcm_s24le out.wav")


def time_peer(command: list[str], out: Path, repeats: int, version: str,
              shown: str) -> dict[str, Any]:
    """Best-of-``repeats`` wall time of a peer tool writing ``out``; its audio length."""
    walls = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - began)
    frames = soundfile.info(str(out)).frames
    out.unlink()
    audio = frames / RATE
    return {"audio_s": audio, "wall_s": min(walls), "walls_s": [round(w, 4) for w in walls],
            "speed": audio / min(walls), "version": version, "command": shown}


def rss_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MB, from /proc/self/status.

    Not ``ru_maxrss``: on Linux it survives ``execve``, so a child forked from a big parent
    reports the parent's size. ``VmHWM`` belongs to the address space exec created.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: best effort


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the forkserver and the track workers it forked)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pss_mb(pids: Sequence[int]) -> float:
    """The proportional set size of these processes together: shared pages (the forkserver's
    preloaded modules, which its workers share) counted once, split among their users."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def memory_child(directory: Path, tracks: int, minutes: float, block_size: int,
                 processes: int = 1) -> None:
    """Child-process side of the memory measurement: render, then print RSS figures.

    With ``processes`` > 1 the render's other processes count too: the peak is then the
    largest proportional set size of this process and its descendants together, sampled
    every 50 ms (VmHWM would count the shared pages once per process).
    """
    import threading

    paths = sorted(directory.glob("track*.wav"))[:tracks]
    spec = task(paths, block_size, "eq", loop=True, duration_s=minutes * 60)
    before = rss_mb("VmRSS")
    peak_pss = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            pids = [os.getpid(), *_descendants(os.getpid())]
            peak_pss[0] = max(peak_pss[0], pss_mb(pids))

    sampler = threading.Thread(target=sample, daemon=True)
    if processes > 1:
        sampler.start()
    began = time.perf_counter()
    with Graph(spec, processes=processes, workers=TrackWorkers) as graph:
        result = render(graph, directory / "memory.wav", "wav24")
    wall = time.perf_counter() - began
    done.set()
    peak = rss_mb("VmHWM") if processes == 1 else peak_pss[0]
    (directory / "memory.wav").unlink()
    print(json.dumps({"peak_rss_mb": peak, "rss_before_render_mb": before,
                      "audio_s": result.duration_s, "wall_s": wall, "speed": result.speed,
                      "block_size": block_size, "tracks": tracks, "processes": processes,
                      "measure": "VmHWM" if processes == 1 else "peak PSS, all processes"}))


def measure_memory(directory: Path, tracks: int, minutes: float,
                   block_size: int, processes: int = 1) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(directory), "--tracks", str(tracks),
         "--minutes", str(minutes), "--block-size", str(block_size),
         "--processes", str(processes)],
        check=True, capture_output=True, text=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def load_factory(reference: str) -> InstanceFactory:
    module, _, name = reference.partition(":")
    factory: InstanceFactory = getattr(importlib.import_module(module), name)
    return factory


# --- report ---------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
            "cpu": model, "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "soundfile": soundfile.__version__,
            "libsndfile": soundfile.__libsndfile_version__}


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                           strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    def row(name: str, r: dict[str, Any] | None, target: str, ok: bool | None) -> list[str]:
        if r is None:
            return [name, "-", "-", "-", "-", target, "not measured"]
        verdict = "" if ok is None else ("ok" if ok else "MISSED")
        return [name, str(r.get("block_size", "-")), f"{r['audio_s']:.0f} s",
                f"{r['wall_s']:.3f} s", f"{r['speed']:.0f}x", target, verdict]

    s = results["scenarios"]
    sox = s.get("sox")
    rows = [["scenario", "block", "audio", "wall (best)", "speed", "target", ""],
            row("(a) gain + pan, no chain", s["a"], f">= {TARGET_A:.0f}x",
                s["a"]["speed"] >= TARGET_A),
            row("    sox -m, same inputs", sox, "", None),
            row("    floor: only reading the inputs", s["read_floor"], "", None),
            row("(a') 0 dB gain instance per track", s["a_chain"], "", None),
            row("(b) + 1 peaking EQ band per track", s["b"], f">= {TARGET_B:.0f}x",
                s["b"]["speed"] >= TARGET_B),
            row("    floor: only the EQ's lfilter calls", s["lfilter_floor"], "", None),
            row("    (b) at the play block size", s["b_small"], "", None),
            row("(c) EQ on a fixed instance (driver)", s.get("c"), "", None)]
    if "a_split" in s:
        rows += [row("(a) in processes (render_processes)", s["a_split"], f">= {TARGET_A:.0f}x",
                     s["a_split"]["speed"] >= TARGET_A),
                 row("(b) in processes (render_processes)", s["b_split"], f">= {TARGET_B:.0f}x",
                     s["b_split"]["speed"] >= TARGET_B)]
    lines = [f"Offline render, {results['tracks']} stereo tracks of {results['seconds']:.0f} s "
             f"(48 kHz, 16-bit WAV in, 24-bit WAV out)", "", table(rows), ""]
    if sox is not None:
        ratio = results["ratio_vs_sox"]
        lines.append(f"ours / sox: {ratio:.1f}x ({'ok' if ratio >= 1.0 else 'MISSED'}, "
                     "target >= 1.0)")
    else:
        lines.append("sox not installed (apt-get install sox): no comparison")
    m = results["memory"]
    lines.append(
        f"memory: {m['audio_s'] / 60:g} min x {m['tracks']} tracks (b, looping files, block "
        f"{m['block_size']}): peak RSS {m['peak_rss_mb']:.0f} MB (after imports "
        f"{m['rss_before_render_mb']:.0f} MB), {m['speed']:.0f}x real time "
        f"({'ok' if m['peak_rss_mb'] <= TARGET_MEMORY_MB else 'MISSED'}, "
        f"target <= {TARGET_MEMORY_MB:.0f} MB)")
    if "memory_split" in results:
        m = results["memory_split"]
        lines.append(
            f"memory in {m['processes']} processes: peak PSS of all of them together "
            f"{m['peak_rss_mb']:.0f} MB, {m['speed']:.0f}x real time "
            f"({'ok' if m['peak_rss_mb'] <= TARGET_MEMORY_MB else 'MISSED'}, "
            f"target <= {TARGET_MEMORY_MB:.0f} MB)")
    lines.append(f"machine: {results['machine']}")
    lines.append(f"benchmark run time: {results['run_s']:.0f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tracks", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--block-size", type=int, default=8192)
    parser.add_argument("--play-block-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=10.0, help="memory test length")
    parser.add_argument("--instance-factory", help="module:callable for scenario (c)")
    parser.add_argument("--driver", default="bench-driver", help="driver name for (c)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--processes", type=int, default=2,
                        help="also render (a) and (b) with tracks split over this many "
                        "processes (the engine's render_processes); 1 to skip")
    parser.add_argument("--memory-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child is not None:
        memory_child(args.memory_child, args.tracks, args.minutes, args.block_size,
                     args.processes)
        return 0

    began = time.perf_counter()
    results: dict[str, Any] = {"tracks": args.tracks, "seconds": args.seconds,
                               "machine": machine(), "scenarios": {}}
    scenarios = results["scenarios"]
    with tempfile.TemporaryDirectory(prefix="render-speed-") as tmp:
        directory = Path(tmp)
        log(f"generating {args.tracks} x {args.seconds:.0f} s stereo WAV files ...")
        paths = generate_inputs(directory, args.tracks, args.seconds)
        os.sync()  # write the inputs back now, not while the renders read them
        out = directory / "out.wav"
        steps: list[tuple[str, Callable[[], dict[str, Any] | None]]] = [
            ("a", lambda: time_render(task(paths, args.block_size, None), out, args.repeats)),
            ("sox", lambda: time_sox(paths, out, max(1, args.repeats - 1))),
            ("read_floor", lambda: time_read_floor(paths, args.block_size, args.repeats)),
            ("a_chain", lambda: time_render(task(paths, args.block_size, "gain"), out,
                                            args.repeats)),
            ("b", lambda: time_render(task(paths, args.block_size, "eq"), out, args.repeats)),
            ("lfilter_floor", lambda: time_lfilter_floor(args.tracks, args.seconds,
                                                         args.block_size, args.repeats)),
            ("b_small", lambda: time_render(task(paths, args.play_block_size, "eq"), out, 1)),
        ]
        if args.processes > 1:
            steps += [
                ("a_split", lambda: time_render(task(paths, args.block_size, None), out,
                                                args.repeats, processes=args.processes)),
                ("b_split", lambda: time_render(task(paths, args.block_size, "eq"), out,
                                                args.repeats, processes=args.processes)),
            ]
        if args.instance_factory:
            factory = load_factory(args.instance_factory)
            steps.append(("c", lambda: time_render(
                task(paths, args.block_size, "eq", driver=args.driver), out, args.repeats,
                factory)))
        for name, step in steps:
            log(f"measuring {name} ...")
            measured = step()
            if measured is not None:
                scenarios[name] = measured
        log(f"measuring memory ({args.minutes:.0f} min) in a child process ...")
        results["memory"] = measure_memory(directory, args.tracks, args.minutes,
                                           args.block_size)
        if args.processes > 1:
            log(f"measuring memory ({args.minutes:.0f} min) in {args.processes} processes ...")
            results["memory_split"] = measure_memory(directory, args.tracks, args.minutes,
                                                     args.block_size, args.processes)
    if "sox" in scenarios:
        results["ratio_vs_sox"] = scenarios["a"]["speed"] / scenarios["sox"]["speed"]
    results["run_s"] = time.perf_counter() - began
    results["machine"]["loadavg_1_5_15_end"] = [round(x, 2) for x in os.getloadavg()]
    results["targets_met"] = targets_met(results)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(report(results))
    return 0 if all(results["targets_met"].values()) else 1


def targets_met(results: dict[str, Any]) -> dict[str, bool]:
    s = results["scenarios"]
    best_a = max(s["a"]["speed"], s.get("a_split", {}).get("speed", 0.0))
    best_b = max(s["b"]["speed"], s.get("b_split", {}).get("speed", 0.0))
    met = {"a_speed": best_a >= TARGET_A, "b_speed": best_b >= TARGET_B,
           "memory": max(results["memory"]["peak_rss_mb"],
                         results.get("memory_split", {}).get("peak_rss_mb", 0.0))
           <= TARGET_MEMORY_MB}
    if "ratio_vs_sox" in results:
        met["faster_than_sox"] = results["ratio_vs_sox"] >= 1.0
    return met


if __name__ == "__main__":
    sys.exit(main())
