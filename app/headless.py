"""``--headless``: hub + node service on a plain asyncio loop, no Qt anywhere."""

from __future__ import annotations

import asyncio
import logging
import signal

from backend.host import Host, HostSettings

log = logging.getLogger(__name__)


async def serve(settings: HostSettings) -> int:
    host = Host(settings)
    # Handlers first: hub.url appears during start, and a supervisor may signal at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await host.start()
    except OSError as exc:
        log.error("%s", exc)
        return 1
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await host.stop()
    return 0


def run(settings: HostSettings) -> int:
    return asyncio.run(serve(settings))
