"""``controlroom agent KIND``: one headless agent process joined to a hub."""

from __future__ import annotations

import asyncio
import logging
import signal

from backend.agents import AgentSession, SessionSettings
from backend.errors import AgentFatal

log = logging.getLogger(__name__)


async def serve(settings: SessionSettings) -> int:
    session = AgentSession(settings)
    loop = asyncio.get_running_loop()
    stopping: set[asyncio.Task[None]] = set()

    def on_signal() -> None:
        log.info("stopping %s %s", settings.kind, settings.name)
        task = asyncio.ensure_future(session.stop())
        stopping.add(task)
        task.add_done_callback(stopping.discard)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await session.run()
    except AgentFatal as exc:
        log.error("%s", exc)
        return 2
    return 0


def run(settings: SessionSettings) -> int:
    return asyncio.run(serve(settings))
