"""The frozen bundle's figures: its size, its start to the console window, its idle hub.

What ships is the PyInstaller one-dir bundle (``packaging/package.py bundle``) and the
.deb made from it; this prints what an operator pays for it, each against the source tree
run by the project's interpreter as a peer, so a regression of the build (a bigger tree, a
slower start, a fatter hub) shows apart from one of the program:

- **size**: the unpacked bundle's apparent size (files by size, symlinks as links), the
  largest entries under ``_internal`` for context, and the .deb's size if one is built.
- **start to window** (target <= 2 s, warm): ``ControlRoom --port 0 --data-dir NEW``
  (offscreen; ``HOME`` and ``XDG_CONFIG_HOME`` in a temporary directory, so no user
  setting is read or written) until it logs ``console window open on ...``. The figure is
  that line's timestamp minus the process's exec as the kernel recorded it (not sensitive
  to polling); the same minus the wall clock just before ``Popen`` and the time this
  script saw the line (polling the log every 10 ms) are printed next to it. Then SIGTERM:
  the process must exit 0. One untimed warm-up per flavour first, then ``--runs`` timed
  runs, frozen and source in turns so both see the same machine load. With ``--xvfb`` the
  same again under a real X server (``xvfb-run``).
- **idle hub**: ``controlroom --headless --port 0`` until ``<data-dir>/hub.url`` exists,
  then ``--idle`` seconds idle, then its RSS and USS (and those of any children).
- **floor**: ``controlroom --version`` (median of 5), what any start cannot go below.

psutil's process start time on Linux is built on the boot time in whole seconds
(``/proc/stat`` ``btime``), which is up to a second off; the exec time used here is
corrected with ``CLOCK_BOOTTIME`` and is good to a clock tick (10 ms).

Run it (about a minute with the defaults; build the bundle first if there is none)::

    .venv/bin/python packaging/package.py bundle        # dist/controlroom
    .venv/bin/python benchmarks/bundle.py [--runs 5] [--bundle PATH] [--deb PATH] [--xvfb]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from harness import table

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "dist" / "controlroom"
SOURCE_PYTHON = ROOT / ".venv" / "bin" / "python"
TIMEOUT = 60.0
POLL = 0.01
SHOWN = "console window open on "
MIB = 2**20


def _package_script() -> Any:
    """``packaging/package.py``, whose size count the build reports too (one definition)."""
    spec = importlib.util.spec_from_file_location("controlroom_package",
                                                  ROOT / "packaging" / "package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


apparent_size = _package_script().apparent_size


# -- size ----------------------------------------------------------------------------------

def largest(directory: Path, n: int) -> list[tuple[str, int]]:
    sizes = [(p.name + ("/" if p.is_dir() and not p.is_symlink() else ""),
              apparent_size(p)[0]) for p in directory.iterdir()]
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:n]


def find_deb(given: Path | None) -> Path | None:
    if given is not None:
        return given if given.is_file() else None
    debs = sorted((ROOT / "dist").glob("controlroom_*_amd64.deb"), key=lambda p: p.stat().st_mtime)
    return debs[-1] if debs else None


# -- processes -----------------------------------------------------------------------------

def exec_time(pid: int) -> float:
    """When the process was started, as epoch seconds, to a clock tick.

    psutil adds the start (ticks since boot) to ``btime``, a whole second; the boot time
    from ``CLOCK_BOOTTIME`` is exact.
    """
    boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    created: float = psutil.Process(pid).create_time()
    return created - float(psutil.boot_time()) + boot


def descendants(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
        return children
    return []


@contextlib.contextmanager
def launched(cmd: Sequence[str], env: dict[str, str], output: Path
             ) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd`` in its own session; whatever happens, nothing of it outlives the block."""
    with output.open("wb") as out:
        proc = subprocess.Popen(list(cmd), cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        family = descendants(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
        for child in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(family, timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything left in its session


def app_process(proc: subprocess.Popen[bytes], data_dir: Path) -> psutil.Process:
    """The program itself: ``proc``, or (under ``xvfb-run``) its descendant given ``data_dir``."""
    top = psutil.Process(proc.pid)
    for p in [*descendants(proc.pid), top]:  # xvfb-run's own command line names it too
        with contextlib.suppress(psutil.Error):
            if str(data_dir) in p.cmdline():
                return p
    raise RuntimeError(f"no process of {proc.args!r} found with --data-dir {data_dir}")


def stop(proc: subprocess.Popen[bytes], app: psutil.Process) -> tuple[int, list[str]]:
    """SIGTERM the program, wait for the exit; its code and any process it left behind."""
    family = descendants(app.pid)
    app.send_signal(signal.SIGTERM)
    code = proc.wait(TIMEOUT)
    _gone, alive = psutil.wait_procs(family, timeout=5)
    left = []
    for p in alive:
        with contextlib.suppress(psutil.Error):
            left.append(f"left running after exit: pid {p.pid} {' '.join(p.cmdline())[:80]}")
    return code, left


def problems_in(log: Path, output: Path) -> list[str]:
    """Errors in the JSON log and tracebacks on stdout/stderr, one line each."""
    found: list[str] = []
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("level") in ("error", "critical") or "exc" in entry:
                    found.append(f"log {entry.get('level')}: {entry.get('msg')}"[:160])
    if output.exists():
        text = output.read_text(errors="replace")
        if "Traceback" in text:
            tail = text[text.index("Traceback"):].strip().splitlines()
            found.append(f"traceback on stderr: {tail[-1] if tail else ''}"[:160])
    return found


class LogFollower:
    """New complete lines of a file that may not exist yet."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def lines(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *complete, self.partial = (self.partial + data).split(b"\n")
        return [line.decode(errors="replace") for line in complete]


# -- start to the console window -----------------------------------------------------------

@dataclass
class Flavour:
    name: str
    window: list[str]  # the windowed command, before --port/--data-dir
    console: list[str]  # the console command (--version, --headless)


@dataclass
class Start:
    exec_to_shown: float
    popen_to_shown: float
    popen_to_seen: float
    exit_code: int
    problems: list[str] = field(default_factory=list)


def parse_ts(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def env_for(home: Path, xvfb: bool) -> dict[str, str]:
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    if xvfb:
        env.pop("QT_QPA_PLATFORM", None)
    else:
        env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def start_to_window(flavour: Flavour, home: Path, xvfb: bool) -> Start:
    with tempfile.TemporaryDirectory(prefix="cr-bundle-") as tmp:
        data_dir = Path(tmp) / "data"
        output = Path(tmp) / "output.txt"
        cmd = [*flavour.window, "--port", "0", "--data-dir", str(data_dir)]
        if xvfb:
            cmd = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", *cmd]
        log = data_dir / "logs" / "controlroom.log"
        follower = LogFollower(log)
        wall0, mono0 = time.time(), time.monotonic()
        with launched(cmd, env_for(home, xvfb), output) as proc:
            shown: float | None = None
            while shown is None:
                for line in follower.lines():
                    with contextlib.suppress(ValueError):
                        entry = json.loads(line)
                        if str(entry.get("msg", "")).startswith(SHOWN):
                            shown = parse_ts(entry["ts"])
                if shown is not None:
                    break
                if proc.poll() is not None:
                    tail = output.read_text(errors="replace").strip().splitlines()[-5:]
                    raise RuntimeError(f"{flavour.name} exited {proc.returncode} before "
                                       f"its window showed: {' | '.join(tail)}")
                if time.monotonic() - mono0 > TIMEOUT:
                    raise TimeoutError(f"{flavour.name}: no window in {TIMEOUT:.0f} s")
                time.sleep(POLL)
            seen = time.monotonic() - mono0
            app = app_process(proc, data_dir)
            started = exec_time(app.pid)
            code, left = stop(proc, app)
        return Start(shown - started, shown - wall0, seen, code,
                     left + problems_in(log, output))


def start_series(flavours: Sequence[Flavour], runs: int, home: Path, xvfb: bool
                 ) -> dict[str, list[Start]]:
    for flavour in flavours:  # warm-up: page cache, font caches, .pyc
        start_to_window(flavour, home, xvfb)
    starts: dict[str, list[Start]] = {f.name: [] for f in flavours}
    for n in range(runs):
        line = f"  run {n + 1}/{runs}:"
        for flavour in flavours:
            s = start_to_window(flavour, home, xvfb)
            starts[flavour.name].append(s)
            line += f" {flavour.name} {s.exec_to_shown:.3f} s (exit {s.exit_code})"
        print(line, flush=True)
    return starts


# -- the idle hub --------------------------------------------------------------------------

@dataclass
class Idle:
    rss: int
    uss: int
    children: int
    family_rss: int
    family_uss: int
    exit_code: int
    problems: list[str]


def idle_hub(flavour: Flavour, home: Path, idle: float) -> Idle:
    with tempfile.TemporaryDirectory(prefix="cr-bundle-") as tmp:
        data_dir = Path(tmp) / "data"
        output = Path(tmp) / "output.txt"
        cmd = [*flavour.console, "--headless", "--port", "0", "--data-dir", str(data_dir)]
        t0 = time.monotonic()
        with launched(cmd, env_for(home, xvfb=False), output) as proc:
            while not (data_dir / "hub.url").exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"{flavour.name} hub exited {proc.returncode} early")
                if time.monotonic() - t0 > TIMEOUT:
                    raise TimeoutError(f"{flavour.name}: no hub.url in {TIMEOUT:.0f} s")
                time.sleep(POLL)
            time.sleep(idle)
            hub = psutil.Process(proc.pid)
            mem = hub.memory_full_info()
            family = descendants(proc.pid)
            rss, uss = mem.rss, mem.uss
            for child in family:
                with contextlib.suppress(psutil.Error):
                    child_mem = child.memory_full_info()
                    rss += child_mem.rss
                    uss += child_mem.uss
            code, left = stop(proc, hub)
        return Idle(mem.rss, mem.uss, len(family), rss, uss, code,
                    left + problems_in(data_dir / "logs" / "controlroom.log", output))


def version_time(flavour: Flavour, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = subprocess.run([*flavour.console, "--version"], cwd=ROOT, capture_output=True,
                             text=True, timeout=TIMEOUT, check=True)
        times.append(time.perf_counter() - t0)
        if "controlroom" not in out.stdout + out.stderr:
            raise RuntimeError(f"{flavour.name} --version said {out.stdout!r}")
    return statistics.median(times)


# -- report --------------------------------------------------------------------------------

def seconds(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.3f} / {min(values):.3f}"


def start_table(starts: dict[str, list[Start]]) -> list[str]:
    frozen, source = starts["frozen"], starts["source"]
    rows = [["median / best (s)", "frozen", "source", "frozen/source"]]
    for label, attr in (("exec -> shown (log ts)", "exec_to_shown"),
                        ("Popen -> shown (log ts)", "popen_to_shown"),
                        ("Popen -> seen (10 ms polls)", "popen_to_seen")):
        a = [getattr(s, attr) for s in frozen]
        b = [getattr(s, attr) for s in source]
        rows.append([label, seconds(a), seconds(b),
                     f"{statistics.median(a) / statistics.median(b):.2f}"])
    rows.append(["exit codes on SIGTERM", ",".join(str(s.exit_code) for s in frozen),
                 ",".join(str(s.exit_code) for s in source), ""])
    return ["  " + line for line in table(rows)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE,
                        help="the one-dir bundle (default dist/controlroom)")
    parser.add_argument("--deb", type=Path, default=None,
                        help="a built .deb (default: newest dist/controlroom_*_amd64.deb)")
    parser.add_argument("--runs", type=int, default=5, help="timed starts per flavour")
    parser.add_argument("--idle", type=float, default=5.0,
                        help="seconds the hub idles before its memory is read")
    parser.add_argument("--xvfb", action="store_true",
                        help="also time the start under a real X server (xvfb-run)")
    args = parser.parse_args(argv)
    bundle = args.bundle.resolve()
    if not (bundle / "controlroom").is_file() or not (bundle / "ControlRoom").is_file():
        print(f"no bundle at {bundle}; build it with:\n"
              f"  .venv/bin/python packaging/package.py bundle", file=sys.stderr)
        return 2
    python = str(SOURCE_PYTHON) if SOURCE_PYTHON.exists() else sys.executable
    flavours = [
        Flavour("frozen", [str(bundle / "ControlRoom")], [str(bundle / "controlroom")]),
        Flavour("source", [python, "-m", "app.main"], [python, "-m", "app.main"]),
    ]
    problems: list[str] = []

    built = datetime.fromtimestamp((bundle / "controlroom").stat().st_mtime)
    print(f"bundle {bundle} (built {built:%Y-%m-%d %H:%M})")
    print(f"machine: {os.cpu_count()} cpus, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    print("\nsize")
    total, count = apparent_size(bundle)
    deb = find_deb(args.deb)
    rows = [["unpacked bundle", f"{total / MIB:.1f} MiB", f"{count} files and links"],
            [".deb", f"{deb.stat().st_size / MIB:.1f} MiB" if deb else "not built",
             deb.name if deb else ""]]
    rows += [[f"  _internal/{name}", f"{size / MIB:.1f} MiB", ""]
             for name, size in largest(bundle / "_internal", 8)]
    print("\n".join("  " + line for line in table(rows)))

    with tempfile.TemporaryDirectory(prefix="cr-home-") as tmp:
        home = Path(tmp)
        modes = [False]
        if args.xvfb:
            if shutil.which("xvfb-run"):
                modes.append(True)
            else:
                print("\n--xvfb: xvfb-run not found, skipped")
        for xvfb in modes:
            where = "xvfb-run" if xvfb else "offscreen"
            print(f"\nstart to console window ({where}, warm; 1 warm-up + {args.runs} runs)",
                  flush=True)
            starts = start_series(flavours, args.runs, home, xvfb)
            print("\n".join(start_table(starts)))
            best = statistics.median(s.exec_to_shown for s in starts["frozen"])
            print(f"  target <= 2 s (frozen median): {'met' if best <= 2.0 else 'MISSED'}")
            for name, series in starts.items():
                for s in series:
                    if s.exit_code != 0:
                        problems.append(f"{name} ({where}) exited {s.exit_code} on SIGTERM")
                    problems += [f"{name} ({where}): {p}" for p in s.problems]

        print(f"\nidle hub (--headless, {args.idle:g} s after hub.url)", flush=True)
        idles = {f.name: idle_hub(f, home, args.idle) for f in flavours}
        rows = [["", "frozen", "source", "frozen/source"]]
        for label, attr in (("RSS (MiB)", "rss"), ("USS (MiB)", "uss"),
                            ("RSS with children (MiB)", "family_rss"),
                            ("USS with children (MiB)", "family_uss")):
            a, b = getattr(idles["frozen"], attr), getattr(idles["source"], attr)
            rows.append([label, f"{a / MIB:.1f}", f"{b / MIB:.1f}", f"{a / b:.2f}"])
        rows.append(["children", str(idles["frozen"].children), str(idles["source"].children),
                     ""])
        rows.append(["exit code on SIGTERM", str(idles["frozen"].exit_code),
                     str(idles["source"].exit_code), ""])
        print("\n".join("  " + line for line in table(rows)))
        for name, idle in idles.items():
            if idle.exit_code != 0:
                problems.append(f"{name} hub exited {idle.exit_code} on SIGTERM")
            problems += [f"{name} hub: {p}" for p in idle.problems]

    print("\nfloor: --version (median of 5)")
    floors = {f.name: version_time(f) for f in flavours}
    rows = [["", "frozen", "source", "frozen/source"],
            ["--version (s)", f"{floors['frozen']:.3f}", f"{floors['source']:.3f}",
             f"{floors['frozen'] / floors['source']:.2f}"]]
    print("\n".join("  " + line for line in table(rows)))

    print("\nproblems: " + ("none" if not problems else ""))
    for p in problems:
        print(f"  - {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
