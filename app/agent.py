"""``controlroom agent KIND``: one headless agent process joined to a hub.

Composition: an :class:`~backend.agents.AgentSession` (enrollment, registration, health,
reconnect) plus the kind's role, which handles its own messages on that session.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from backend.agents import AgentSession, SessionSettings
from backend.errors import AgentFatal

log = logging.getLogger(__name__)


def attach_role(session: AgentSession, kind: str) -> object:
    """Give the session its kind's behaviour; returns the role object."""
    if kind == "engine":
        from backend.engine import Engine

        engine = Engine(session, session.settings.data_dir)
        session.on_disconnected = engine.connection_lost
        return engine
    if kind == "driver":
        from backend.driver import Driver

        driver = Driver(session)

        async def configured(config: dict[str, Any]) -> None:
            driver.configure(config)
            await driver.announce()

        session.on_config_hooks.append(configured)
        return driver
    return None


async def serve(settings: SessionSettings) -> int:
    session = AgentSession(settings)
    attach_role(session, settings.kind)
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
