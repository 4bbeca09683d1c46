"""How responsive the console stays under load: event-loop lag and meter latency.

The real window, nothing staged: a ``MainWindow`` over the embedded hub (on the same
qasync loop, as the desktop app runs it), an engine and two instance drivers spawned as
real child processes, and the demo task reserved, selected in the Tasks tab and playing,
so its stream is relayed to the console, played on the (null) output and metered at 30 Hz.
Meanwhile hub events arrive at ``--rate`` per second (500 by default): ``job.report``
events (accepted, started, ended: the kinds the event log shows, not the progress ticks it
leaves to the progress bars), as a busy render farm sends them, appended through the hub's
own event log, so each one is stored in SQLite, fanned out to the bridge and written to
the event log view.

- **Event-loop lag** (timer drift): a coroutine on the GUI loop sleeps 10 ms again and
  again and records how late it wakes. Target: p99 <= 20 ms.
- **Meter latency**: from the engine metering a block (the ``t`` stamped on each meters
  message, the engine's wall clock) to the console painting that reading (the panel's
  30 Hz paint applies it). Target: <= 100 ms (p99).

Run it (about 40 s): ``QT_QPA_PLATFORM=offscreen .venv/bin/python
benchmarks/gui_responsiveness.py [--seconds 20] [--rate 500] [--json]``, or under Xvfb
(``xvfb-run -a``) for the real X11 paint path. Exits 1 when a target is missed.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QCoreApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.console import open_console, wait_for  # noqa: E402
from app.desktop import QtEventLoop  # noqa: E402
from backend.audio.spec import TaskSpec  # noqa: E402
from backend.host import Host  # noqa: E402
from ui.tasks.spec_editor import DEMO_SPEC  # noqa: E402

TARGET_LAG_P99_MS = 20.0
TARGET_METER_MS = 100.0
TICK_S = 0.010


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def lag_probe(stop: asyncio.Event, lags_ms: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        asked = loop.time()
        await asyncio.sleep(TICK_S)
        lags_ms.append(max(0.0, (loop.time() - asked - TICK_S) * 1000))


async def event_source(host: Host, rate: float, stop: asyncio.Event) -> int:
    """``job.report`` events at ``rate`` per second, in bursts every 20 ms (as a hub takes
    in a farm's reports), through the hub's own event log."""
    loop = asyncio.get_running_loop()
    start, sent = loop.time(), 0
    while not stop.is_set():
        due = int((loop.time() - start) * rate)
        while sent < due:
            job = f"job-{sent // 3:05d}"
            step = ("accepted", "started", "ended")[sent % 3]
            await host.hub.events.append("job.report", job, {
                "state": "succeeded" if step == "ended" else "running", "runner": "runner-1",
                "event": step, "seq": sent % 3 + 1})
            sent += 1
        await asyncio.sleep(0.02)
    return sent


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="controlroom-gui-bench-") as tmp:
        async with open_console(Path(tmp)) as console:
            host, bridge = console.host, console.bridge
            window, supervisor = console.window, console.supervisor
            window.resize(1280, 820)
            log("spawning an engine and two drivers ...")
            for kind, name in (("engine", "engine-1"), ("driver", "driver-1"),
                               ("driver", "driver-2")):
                await supervisor.spawn(kind, name)
            names = ("engine-1", "driver-1", "driver-2")
            await wait_for(lambda: all(
                str(c.get("state")) == "up" for c in bridge.snapshot()
                if c.get("id") in names) and len(bridge.snapshot()) >= 3, "agents up")
            spec = TaskSpec.model_validate_json(DEMO_SPEC.read_text())
            # loop the demo for the whole measurement
            spec = spec.model_copy(update={"duration_s": args.seconds + 10})
            task = await bridge.reserve_task(spec)
            tid = str(task["id"])
            tasks = window.tasks_view
            window.show_tab(tasks)
            await wait_for(lambda: tasks.select(tid), "the task listed")
            await wait_for(lambda: (tasks.selected_task() or {}).get("state") == "ready",
                           "the task ready")
            meters = tasks.panel.meters
            await bridge.play_task(tid)
            await wait_for(lambda: meters.readings > 10, "the meters moving")

            latencies_ms: list[float] = []
            seen: list[Any] = [None]

            def after_paint() -> None:  # connected after the panel's own paint slot
                reading = meters.latest
                if reading is not None and reading is not seen[0] and reading.get("t"):
                    seen[0] = reading
                    latencies_ms.append((time.time() - float(reading["t"])) * 1000)

            meters.timer.timeout.connect(after_paint)
            log(f"measuring {args.seconds:g} s: {args.rate:g} events/s, meters at 30 Hz, "
                "the task playing ...")
            stop = asyncio.Event()
            lags: list[float] = []
            paints_before = meters.paints
            probe = asyncio.create_task(lag_probe(stop, lags))
            source = asyncio.create_task(event_source(host, args.rate, stop))
            started = time.monotonic()
            await asyncio.sleep(args.seconds)
            stop.set()
            sent = await source
            await probe
            elapsed = time.monotonic() - started
            meters.timer.timeout.disconnect(after_paint)
            paints = meters.paints - paints_before
            shown = len(window.event_log.lines())
            await bridge.stop_task(tid)
    return {
        "seconds": round(elapsed, 2),
        "events_per_s": round(sent / elapsed, 1),
        "paints_per_s": round(paints / elapsed, 1),
        "event_log_lines": shown,
        "lag_ms": {"p50": round(percentile(lags, 50), 2), "p99": round(percentile(lags, 99), 2),
                   "max": round(max(lags), 2), "samples": len(lags),
                   "target_p99": TARGET_LAG_P99_MS},
        "meter_latency_ms": {
            "p50": round(percentile(latencies_ms, 50), 1),
            "p99": round(percentile(latencies_ms, 99), 1),
            "max": round(max(latencies_ms), 1), "mean": round(statistics.mean(latencies_ms), 1),
            "samples": len(latencies_ms), "target": TARGET_METER_MS},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform_qpa": os.environ.get("QT_QPA_PLATFORM", "xcb"),
                    "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=500.0, help="hub events per second")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    QCoreApplication.setApplicationName("Control Room benchmark")
    app.setQuitOnLastWindowClosed(False)
    with asyncio.Runner(loop_factory=lambda: QtEventLoop(app)) as runner:
        result = runner.run(measure(args))
    lag, meter = result["lag_ms"], result["meter_latency_ms"]
    ok_lag = lag["p99"] <= TARGET_LAG_P99_MS
    ok_meter = meter["p99"] <= TARGET_METER_MS
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"GUI responsiveness, {result['seconds']} s with {result['events_per_s']} "
              f"events/s arriving and {result['paints_per_s']} meter paints/s, a task playing")
        print(f"event-loop lag (10 ms timer): p50 {lag['p50']} ms, p99 {lag['p99']} ms, "
              f"max {lag['max']} ms  (target p99 <= {TARGET_LAG_P99_MS:g} ms: "
              f"{'ok' if ok_lag else 'MISSED'})")
        print(f"meter latency (metered -> painted): p50 {meter['p50']} ms, p99 {meter['p99']} "
              f"ms, max {meter['max']} ms over {meter['samples']} readings  (target <= "
              f"{TARGET_METER_MS:g} ms: {'ok' if ok_meter else 'MISSED'})")
        print(f"machine: {result['machine']}")
    return 0 if ok_lag and ok_meter else 1


if __name__ == "__main__":
    sys.exit(main())
