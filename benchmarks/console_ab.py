"""Before and after, interleaved: the embedded console's start-up and its responsiveness.

A change to how the console reaches its hub (here: the embedded console moving from
in-process calls to the same HTTP client a remote console uses) must not cost the operator
anything. This runs the same two measurements on two checkouts of the project, in turns
(A, B, A, B, ...), so both see the same machine load, and prints medians and spread:

- **start-up**: from exec of a fresh interpreter to the console window shown with the
  hub's first events in its event log (an embedded hub and node on a free port, in a new
  data dir, offscreen). Imports, the hub's start, the bridge's attach and first poll, and
  the window's construction are all inside it.
- **responsiveness**: ``benchmarks/gui_responsiveness.py --json`` of each checkout (event
  loop lag p99, meter latency p99, with the demo playing and 500 hub events/s).

Run it (about 10 minutes with the defaults)::

    git worktree add /tmp/before <commit>
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/console_ab.py \\
        --a /tmp/before --b . --runs 5 --gui-seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: One start-up, run inside the checkout under test (older trees kept the console helper in
#: ``ui.embedded_console``).
STARTUP = r"""
import os, sys, time
t0 = float(os.environ["CR_T0"])
sys.path.insert(0, os.getcwd())
import asyncio, tempfile
from pathlib import Path
from PySide6.QtWidgets import QApplication
try:
    from app.console import open_console
except ImportError:
    from ui.embedded_console import open_console
from app.desktop import QtEventLoop

app = QApplication(sys.argv[:1])
app.setQuitOnLastWindowClosed(False)

async def main() -> float:
    with tempfile.TemporaryDirectory() as d:
        async with open_console(Path(d)) as console:
            while not (console.window.isVisible() and console.window.event_log.counts()[1]):
                await asyncio.sleep(0.005)
            return time.time() - t0

with asyncio.Runner(loop_factory=lambda: QtEventLoop(app)) as runner:
    print(runner.run(main()))
"""


def startup(tree: Path) -> float:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "QT_API": "pyside6", "PYQTGRAPH_QT_LIB": "PySide6", "CR_T0": repr(time.time())}
    out = subprocess.run([sys.executable, "-c", STARTUP], cwd=tree, env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def responsiveness(tree: Path, seconds: float) -> dict[str, float]:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    out = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "gui_responsiveness.py"), "--json",
         "--seconds", str(seconds)], cwd=tree, env=env, capture_output=True, text=True,
        timeout=300)
    result = json.loads(out.stdout[out.stdout.index("{"):])
    return {"lag_p99_ms": result["lag_ms"]["p99"],
            "meter_p99_ms": result["meter_latency_ms"]["p99"]}


def summary(values: list[float]) -> str:
    return (f"median {statistics.median(values):.3f}  min {min(values):.3f}  "
            f"max {max(values):.3f}  (n={len(values)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--a", type=Path, required=True, help="checkout A (before)")
    parser.add_argument("--b", type=Path, default=ROOT, help="checkout B (after)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gui-seconds", type=float, default=10.0)
    parser.add_argument("--skip-gui", action="store_true")
    args = parser.parse_args(argv)
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    starts: dict[str, list[float]] = {"A": [], "B": []}
    gui: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
    for n in range(args.runs):
        for label, tree in trees.items():
            starts[label].append(startup(tree))
            line = f"run {n + 1} {label}: start-up {starts[label][-1]:.3f} s"
            if not args.skip_gui:
                for key, value in responsiveness(tree, args.gui_seconds).items():
                    gui[label].setdefault(key, []).append(value)
                    line += f", {key} {value}"
            print(line, flush=True)
    for label, tree in trees.items():
        print(f"\n{label} = {tree}")
        print(f"  start-up (s):        {summary(starts[label])}")
        for key, values in gui[label].items():
            print(f"  {key + ':':<20} {summary(values)}")
    print(f"\nload average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
