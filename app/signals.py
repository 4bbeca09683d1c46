"""SIGINT and SIGTERM as an orderly stop, for every headless mode.

The handler runs on the event loop (``loop.add_signal_handler``), never interrupting a
coroutine halfway; it starts the mode's own ``stop`` coroutine once and keeps a reference
to its task, so the task is neither collected early nor started twice.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


def stop_on_signals(stop: Callable[[], Awaitable[None]], what: str) -> set[asyncio.Task[None]]:
    """Install the handlers; returns the set holding the stop task once it runs."""
    loop = asyncio.get_running_loop()
    stopping: set[asyncio.Task[None]] = set()

    def on_signal() -> None:
        if stopping:
            return
        log.info("stopping %s", what)

        async def run() -> None:
            await stop()

        stopping.add(asyncio.ensure_future(run()))

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stopping
