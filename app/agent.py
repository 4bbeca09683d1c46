"""``controlroom agent KIND``: one headless agent process joined to a hub.

Composition: an :class:`~backend.agents.AgentSession` (enrollment, registration, health,
reconnect) plus the kind's role, which handles its own messages on that session.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from app.signals import stop_on_signals
from backend.agents import AgentSession, SessionSettings
from backend.errors import AgentFatal

log = logging.getLogger(__name__)


def attach_role(session: AgentSession, kind: str) -> object:
    """Give the session its kind's behaviour; returns the role object."""
    if kind in ("engine", "driver"):
        from backend.audio import preload_filters

        preload_filters()
    if kind == "engine":
        from backend.engine import Engine, render_processes

        engine = Engine(session, session.settings.data_dir)
        session.on_disconnected = engine.connection_lost

        warming: set[asyncio.Future[None]] = set()

        async def split_renders(config: dict[str, Any]) -> None:
            # In the background: the forkserver's imports and the idle worker's fork take
            # a second or two of CPU, and the session answers no health check until its
            # config hooks return (awaited, this kept a new engine half-open 2.5 s longer).
            processes = render_processes(config)
            if processes > 1:
                from backend.audio import prewarm_workers

                job = asyncio.ensure_future(asyncio.to_thread(prewarm_workers, processes - 1))
                warming.add(job)
                job.add_done_callback(_warmed)
                job.add_done_callback(warming.discard)

        session.on_config_hooks.append(split_renders)
        return engine
    if kind == "driver":
        from backend.driver import Driver

        driver = Driver(session)

        async def configured(config: dict[str, Any]) -> None:
            driver.configure(config)
            await driver.announce()
            await driver.open_link(config)

        session.on_config_hooks.append(configured)
        return driver
    if kind == "runner":
        from backend.runner import Runner

        return Runner(session)
    return None


def _warmed(job: asyncio.Future[None]) -> None:
    if not job.cancelled() and job.exception() is not None:
        log.error("track workers not started ahead (renders start them): %s", job.exception())


async def serve(settings: SessionSettings) -> int:
    session = AgentSession(settings)
    attach_role(session, settings.kind)
    stop_on_signals(session.stop, f"{settings.kind} {settings.name}")
    try:
        await session.run()
    except AgentFatal as exc:
        log.error("%s", exc)
        return 2
    return 0


def run(settings: SessionSettings) -> int:
    return asyncio.run(serve(settings))
