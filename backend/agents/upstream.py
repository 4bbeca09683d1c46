"""A hub's registration with a cloud-role hub (the seed's orchestrated boot).

The hub is an agent of kind ``hub`` to its upstream: same enrollment, same hello, same
health checks. On top, it reports a summary of its own components whenever one of them
changes (at most every 0.2 s), so the cloud's registry shows what each studio holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.agents.session import AgentSession, SessionSettings
from backend.errors import AgentFatal
from backend.protocol import Report

if TYPE_CHECKING:
    from backend.hub import Hub

log = logging.getLogger(__name__)

REPORT_DEBOUNCE_S = 0.2


@dataclass(frozen=True)
class Upstream:
    """Where a hub registers itself in an orchestrated boot.

    It lives beside the link that uses it, so the host (which builds the link) depends on
    this module and not the other way round.
    """

    url: str
    name: str
    token: str | None = None
    #: The upstream certificate's fingerprint (first start; then kept with the credentials).
    pin: str | None = None


class UpstreamLink:
    def __init__(self, hub: Hub, upstream: Upstream, data_dir: Path, base_url: str) -> None:
        self.hub = hub
        self.session = AgentSession(
            SessionSettings(
                hub_url=upstream.url, name=upstream.name, kind="hub", data_dir=data_dir,
                token=upstream.token, pin=upstream.pin,
                static_config={"role": hub.settings.role, "url": base_url},
            ),
            on_connected=lambda _session: self._send_report(),
        )
        self._tasks: list[asyncio.Task[None]] = []

    def summary(self) -> list[dict[str, Any]]:
        return [
            {"id": c.id, "kind": c.kind, "state": c.state.value, "rtt_ms": c.rtt_ms}
            for c in sorted(self.hub.registry.components.values(), key=lambda c: c.id)
        ]

    async def _send_report(self) -> None:
        await self.session.send(Report(components=self.summary()))

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run_session(), name="upstream-session"),
            asyncio.create_task(self._report_changes(), name="upstream-reports"),
        ]

    async def stop(self) -> None:
        await self.session.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run_session(self) -> None:
        try:
            await self.session.run()
        except AgentFatal as exc:
            log.error("upstream registration stopped: %s", exc)

    async def _report_changes(self) -> None:
        queue = self.hub.events.subscribe()
        try:
            while True:
                event = await queue.get()
                if event is None:
                    queue = self.hub.events.subscribe()
                elif not event.type.startswith("component."):
                    continue
                await asyncio.sleep(REPORT_DEBOUNCE_S)
                while not queue.empty():
                    queue.get_nowait()
                await self._send_report()
        finally:
            self.hub.events.unsubscribe(queue)
