"""Helpers for the GUI tests: a qasync loop, a real console, real agent processes.

Each GUI test runs one scenario coroutine on a ``qasync.QEventLoop`` (:class:`QtLoop`):
the embedded host starts, the window opens, real agent processes join over real sockets,
and the scenario waits for what the window shows. Host, bridge and window live and die
inside that one coroutine, because pytest-qt processes Qt events between test phases:
a qasync timer firing then would run an asyncio callback with no running loop. The loop
is driven with ``run_forever`` and a done-callback, not ``run_until_complete``, which
processes stray events after stopping for the same reason.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import shiboken6
from PySide6.QtWidgets import QApplication

from app.console import Console, wait_for
from app.desktop import QtEventLoop

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]

#: Generous: the machine is small and shared, and an agent is a fresh Python process.
APPEAR_TIMEOUT_S = 20.0


class QtLoop:
    """Runs coroutines on a qasync loop over the test QApplication, one at a time."""

    def __init__(self, app: QApplication) -> None:
        self.app = app
        self.loop = QtEventLoop(app)
        asyncio.set_event_loop(self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(timeout):
                return await coro

        task = self.loop.create_task(bounded())
        task.add_done_callback(lambda _task: self.loop.stop())
        self.loop.run_forever()
        if not task.done():
            task.cancel()
            raise RuntimeError("the Qt event loop stopped before the scenario finished")
        return task.result()

    def close(self) -> None:
        """Finish what is left (as ``asyncio.Runner`` does) and close the loop."""
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.run(asyncio.gather(*pending, return_exceptions=True), timeout=10)
        self.run(self.loop.shutdown_asyncgens(), timeout=10)
        self.loop.close()
        asyncio.set_event_loop(None)
        # The loop's timer QObject must die here, on the GUI thread. Left to the garbage
        # collector it can be freed from whichever thread allocates next (the hub's SQLite
        # worker), which leaves its pending Qt timers pointing at freed memory: the next
        # loop's exec() then crashes in QTimerInfoList::activateTimers.
        shiboken6.delete(self.loop._timer)


async def wait_until(
    predicate: Callable[[], bool], what: str, within: float = APPEAR_TIMEOUT_S
) -> None:
    """Poll while the loop (and so the hub, the bridge and Qt) keeps running; a test's
    failure when it never holds."""
    try:
        await wait_for(predicate, what, within, poll_s=0.05)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None


class Agents:
    """Real agent processes, enrolled over HTTP as an operator would; killed at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._running: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    async def enroll(self, console: Console, kind: str) -> str:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                f"{console.base_url}/api/v1/enrollments",
                json={"kind": kind},
                headers={"Authorization": f"Bearer {console.host.hub.operator_token}"},
            )
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    async def spawn(self, console: Console, kind: str, name: str) -> subprocess.Popen[bytes]:
        """Enroll, then start ``controlroom agent KIND`` with the one-time token."""
        return self.start(console.base_url, kind, name, await self.enroll(console, kind))

    def start(self, base_url: str, kind: str, name: str, token: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.stderr").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app.main", "agent", kind, "--hub", base_url,
             "--name", name, "--token", token, "--data-dir", str(self.root / name)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        )
        self._running.append((process, log))
        return process

    def stderr_of(self, name: str) -> str:
        return (self.root / f"{name}.stderr").read_text(errors="replace")

    def close(self) -> None:
        for process, log in self._running:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            log.close()


async def exited(process: subprocess.Popen[bytes], within: float = 10.0) -> int:
    """Wait for a child without blocking the loop; its exit code."""
    await wait_until(lambda: process.poll() is not None, "exited", within)
    return int(process.returncode)
