"""Shared plumbing of the benchmarks: a real hub in a child process, its event stream, cleanup.

The benchmarks measure the product as an operator runs it, so the hub is the real
``controlroom --headless`` in its own process (on a free port, in a temporary data dir)
and agents are real processes or real WebSocket connections. This module owns the parts
every benchmark needs and that are easy to get subtly wrong:

- :class:`Reaper` starts child processes and, whatever happens (an error, Ctrl-C, SIGTERM,
  even a SIGKILL of the benchmark on Linux, through ``PR_SET_PDEATHSIG``), leaves none
  behind: stopped ones are continued, all are asked to stop, stragglers are killed.
- :func:`start_hub` waits for ``<data-dir>/hub.url`` and a healthy ``GET /api/v1/health``.
- :class:`EventStream` follows ``GET /api/v1/events`` and timestamps each server-sent event
  the moment it arrives, so a benchmark measures "the hub said down" by push, not by
  polling (a poll adds up to its period to every figure).

Every call to the hub's API goes through :class:`backend.client.HubClient` (the one client
of that API), so a change of URL, token header or error shape is made there, not here.

The benchmarks run as ``python benchmarks/NAME.py``, which puts this directory first on
``sys.path``; that is how they import this module.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import random
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, TypeVar

from backend.client import ClientError, Follower, HubClient, HubUnreachable
from backend.tls import Trust, made_by_hub

PR_SET_PDEATHSIG = 1
HUB_START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0

T = TypeVar("T")


def progress(message: str) -> None:
    """Progress goes to stderr so ``--json`` output on stdout stays parseable."""
    print(message, file=sys.stderr, flush=True)


def long_run(description: str) -> argparse.ArgumentParser:
    """The arguments every long run (the fuzzers, chaos) takes: ``--minutes`` and
    ``--seed``; :func:`seed_of` picks and prints the seed."""
    parser = argparse.ArgumentParser(description=description.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: fresh)")
    return parser


def seed_of(args: argparse.Namespace) -> int:
    """``--seed``, or a fresh one; printed first, so any run can be replayed."""
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    progress(f"seed {seed} (replay with --seed {seed})")
    return int(seed)


def sigterm_as_interrupt() -> None:
    """Make SIGTERM (and SIGINT, even where a shell ignored it) unwind like Ctrl-C.

    The cleanup then runs in ``finally`` blocks. SIGINT needs it too: a shell without job
    control starts background commands with SIGINT ignored, and Python keeps that.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def raise_fd_limit(wanted: int = 65536) -> None:
    """Lift the soft open-files limit (children inherit it): each agent is one socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when this process dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return preexec


class Reaper:
    """Starts child processes and guarantees their end; also owns the temporary directory.

    Use as a context manager around the whole benchmark, outside ``asyncio.run``, so its
    cleanup runs even when the event loop is torn down by Ctrl-C.
    """

    def __init__(self, keep: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="controlroom-bench-"))
        self.keep = keep
        self._children: list[tuple[subprocess.Popen[bytes], TextIO]] = []
        self._preexec = _die_with_parent()

    def __enter__(self) -> Reaper:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def spawn(self, args: Sequence[str], log_name: str) -> subprocess.Popen[bytes]:
        """Start a child with stdout discarded and stderr in ``<tmp>/logs/<log_name>``."""
        log_dir = self.root / "logs"
        log_dir.mkdir(exist_ok=True)
        log = (log_dir / log_name).open("a")
        try:
            proc = subprocess.Popen(
                list(args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                preexec_fn=self._preexec,  # only calls prctl: safe between fork and exec
            )
        except BaseException:
            log.close()
            raise
        self._children.append((proc, log))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
        """Continue (if stopped), SIGTERM, wait up to ``grace_s``, then SIGKILL."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """Stop every child still running (newest first), then remove the temporary dir."""
        while self._children:
            proc, log = self._children.pop()
            try:
                self.stop(proc)
            except KeyboardInterrupt:  # a second Ctrl-C: stop asking politely
                proc.kill()
                proc.wait()
            finally:
                log.close()
        if self.keep:
            progress(f"kept the hub's data dir and the logs in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        """Drop an already-ended child from the cleanup list (closing its log)."""
        for i, (child, log) in enumerate(self._children):
            if child is proc:
                log.close()
                del self._children[i]
                return


def controlroom(*args: str) -> list[str]:
    """The command line of ``controlroom ARGS`` with this interpreter (the venv's)."""
    return [sys.executable, "-m", "app.main", *args]


@dataclass(frozen=True)
class HubProcess:
    proc: subprocess.Popen[bytes]
    url: str
    token: str
    data_dir: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/api/v1/agents"

    @property
    def trust(self) -> Trust:
        """A TLS hub's own certificate (from its data dir), as a pinned agent trusts it."""
        made = made_by_hub(self.data_dir) if self.url.startswith("https:") else None
        return Trust((made,)) if made else Trust()

    @property
    def pin(self) -> str:
        """What an agent is started with (``--pin``); "" on plain HTTP."""
        return self.trust.fingerprints[0] if self.trust.anchors else ""

    @property
    def ssl(self) -> ssl.SSLContext | None:
        """For ``websockets.connect(ssl=...)``: None on plain HTTP."""
        return self.trust.context() if self.url.startswith("https:") else None

    def client(self, timeout: float = 30.0) -> HubClient:
        """A client of this hub with its operator token (close it: ``async with``)."""
        return HubClient(self.url, self.token, timeout=timeout, trust=self.trust)


async def start_hub(reaper: Reaper, extra: Sequence[str] = ()) -> HubProcess:
    """Start ``controlroom --headless --port 0`` in a fresh data dir and wait until healthy."""
    data_dir = reaper.root / "hub"
    proc = reaper.spawn(
        controlroom("--headless", "--data-dir", str(data_dir), "--port", "0", *extra),
        "hub.log",
    )
    url_file, token_file = data_dir / "hub.url", data_dir / "admin.token"
    deadline = time.monotonic() + HUB_START_TIMEOUT_S
    while not (url_file.exists() and token_file.exists()):
        if proc.poll() is not None:
            raise RuntimeError(
                f"the hub exited with {proc.returncode}; see {reaper.root / 'logs/hub.log'}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"the hub wrote no hub.url within {HUB_START_TIMEOUT_S:g} s")
        await asyncio.sleep(0.05)
    hub = HubProcess(proc, url_file.read_text().strip(), token_file.read_text().strip(),
                     data_dir)
    async with HubClient(hub.url, timeout=5, trust=hub.trust) as client:
        await client.health()
    return hub


async def enroll(client: HubClient, kind: str = "engine") -> str:
    """A one-time enrollment token (``client`` must hold the operator token)."""
    return str((await client.create_enrollment(kind))["token"])


async def spawn_agent(reaper: Reaper, hub: HubProcess, client: HubClient, kind: str,
                      name: str, *extra: str) -> subprocess.Popen[bytes]:
    """``controlroom agent KIND`` enrolled on ``hub`` (data in ``<tmp>/NAME``, log
    ``NAME.log``); wait for it with the hub's component list."""
    return reaper.spawn(controlroom("agent", kind, "--hub", hub.url, "--name", name,
                                    "--token", await enroll(client, kind),
                                    "--data-dir", str(reaper.root / name), *extra),
                        f"{name}.log")


async def retried(call: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """``call()`` again when nothing answered: the hub closes keep-alive connections idle
    for 5 s, and a request sent on one just as it closes fails without a response (the
    usual keep-alive race). Only for requests that are safe to repeat (reads)."""
    for attempt in range(attempts):
        try:
            return await call()
        except HubUnreachable:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Observed:
    """One server-sent event with the time it reached this process."""

    arrived: float  # time.monotonic() at arrival
    arrived_wall: float  # time.time() at arrival, comparable with the hub's ``ts``
    id: int
    type: str
    subject: str
    ts: float  # when the hub appended the event (hub's time.time())
    data: dict[str, Any]


class EventStream:
    """Follows the hub's SSE stream in a task; waiters match on events after a mark.

    It reads the whole log from its start (the hub always holds at least its own
    ``hub.started``), so the first record proves the stream is open; a cut stream is
    reopened after the last event seen (:meth:`HubClient.events`).
    """

    def __init__(self, hub: HubProcess) -> None:
        self.events: list[Observed] = []
        self._changed = asyncio.Condition()
        self._opened = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Its own client: the stream holds one connection open for the whole run.
        self._client = hub.client()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="sse")
        opened = asyncio.create_task(self._opened.wait())
        done, _ = await asyncio.wait({opened, self._task}, timeout=10,
                                     return_when=asyncio.FIRST_COMPLETED)
        if opened not in done:
            opened.cancel()
            if self._task in done:
                self._task.result()
            raise RuntimeError("the event stream did not open within 10 s")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ClientError):
                await self._task
        await self._client.aclose()

    async def _follow(self) -> None:
        # No idle timeout: a reopening in the middle of a trial would delay the event it
        # waits for; cancelling the task (close) ends the read instead.
        async for record in self._client.events(Follower(0)):
            arrived, arrived_wall = time.monotonic(), time.time()
            self._opened.set()
            body = record.data
            event = Observed(arrived, arrived_wall, int(body["id"]), body["type"],
                             body["subject"], float(body["ts"]), body["data"])
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        raise RuntimeError("the hub's event stream ended")

    def mark(self) -> int:
        """A position; :meth:`wait_for` only looks at events that arrive after it."""
        return len(self.events)

    def since(self, mark: int) -> list[Observed]:
        return self.events[mark:]

    async def wait_for(
        self, match: Callable[[Observed], bool], after: int, within_s: float
    ) -> Observed:
        """The first event after ``after`` that matches; TimeoutError after ``within_s``."""
        checked = after
        async with asyncio.timeout(within_s), self._changed:
            while True:
                for event in self.events[checked:]:
                    if match(event):
                        return event
                checked = len(self.events)
                if self._task is not None and self._task.done():
                    self._task.result()
                    raise RuntimeError("the event stream ended")
                await self._changed.wait()

    async def wait_state(self, subject: str, new: str, after: int, within_s: float) -> Observed:
        """The next ``component.state`` event moving ``subject`` to ``new``."""

        def match(event: Observed) -> bool:
            return (event.type == "component.state" and event.subject == subject
                    and event.data.get("new") == new)

        try:
            return await self.wait_for(match, after, within_s)
        except TimeoutError:
            raise TimeoutError(f"{subject} did not become {new} within {within_s:g} s") from None


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, min, median, mean, p90 (nearest rank) and max of a sample."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    p90 = ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered)) - 1))]
    return {
        "n": len(ordered), "min": ordered[0], "median": statistics.median(ordered),
        "mean": statistics.fmean(ordered), "p90": p90, "max": ordered[-1],
    }


def fmt_duration(seconds: float) -> str:
    """Milliseconds below one second, seconds above: '4.2 ms', '3.012 s'."""
    if seconds < 0.9995:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.3f} s"


def table(rows: Sequence[Sequence[str]]) -> Iterator[str]:
    """Left-aligned first column, right-aligned others, columns sized to fit."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(widths[i]) for i, cell in enumerate(row[1:], start=1)]
        yield "  ".join(cells).rstrip()


def machine() -> dict[str, Any]:
    """What the figures were measured on, including how busy the machine already was."""
    import platform

    import psutil

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }
