"""The one adapter between the in-process hub and Qt: backend state in, Qt signals out.

Widgets never hold the hub. They hold a :class:`HubBridge`, which reads the hub's
registry and event log on the shared qasync loop and re-emits what it sees as Qt
signals: a snapshot of every component (the dicts ``GET /api/v1/components`` returns) and
each event as the SSE stream carries it. The snapshot is sent again once a second, since a
component's round trip and last-seen time change on every health check without an event.

Signals carry ``object`` rather than ``list``/``dict``: PySide converts those through
QVariant, which copies every nested value and reorders a config's keys. The bridge makes
its own deep copy instead, so no view ever aliases the hub's live dicts.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from backend.hub import HealthSettings, Hub
from backend.hub.events import Event

log = logging.getLogger(__name__)

#: How many stored events a new window shows, so it opens with the recent history.
BACKLOG_EVENTS = 200


class HubBridge(QObject):
    """Publishes the hub's components and events to Qt; start it from the running loop."""

    #: A full snapshot: ``list[dict]``, one ``Component.view()`` per component.
    components_changed = Signal(object)
    #: One hub event as ``Event.as_json()``: ``{"id", "ts", "type", "subject", "data"}``.
    event_received = Signal(object)
    #: The bridge fell behind the hub's event stream and skipped this many events.
    events_skipped = Signal(int)
    #: Live updates stopped because of an error (the message); the view is now stale.
    failed = Signal(str)

    def __init__(
        self,
        hub: Hub,
        base_url: str,
        *,
        refresh_s: float = 1.0,
        backlog: int = BACKLOG_EVENTS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._hub = hub
        self._base_url = base_url
        self._refresh_s = refresh_s
        self._backlog = backlog
        self._task: asyncio.Task[None] | None = None

    # -- what the views may know about the hub ----------------------------------------

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def role(self) -> str:
        return self._hub.settings.role

    @property
    def data_dir(self) -> Path:
        return self._hub.settings.data_dir

    @property
    def admin_token_path(self) -> Path:
        """Where the operator token lives (mode 0600); shown, never read, by the views."""
        return self._hub.settings.data_dir / "admin.token"

    @property
    def health(self) -> HealthSettings:
        return self._hub.settings.health

    def snapshot(self) -> list[dict[str, Any]]:
        """Every component as the HTTP API shows it, deep-copied."""
        return [copy.deepcopy(c.view()) for c in self._hub.registry.components.values()]

    # -- life -------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` as a task; call it from a coroutine on the running loop.

        Not from ``__init__``: a bridge is usually built before the qasync loop runs, and a
        task cannot be created then (PITFALLS.md).
        """
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="hub-bridge")
        return self._task

    def stop(self) -> None:
        """Cancel live updates; safe to call twice, or from a signal handler."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait_stopped(self) -> None:
        """Wait for :meth:`run` to end after :meth:`stop` (never raises)."""
        if self._task is not None:
            await asyncio.wait({self._task})

    async def run(self) -> None:
        """Emit the recent history, then every new event and a snapshot each second."""
        try:
            await self._follow()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("live updates from the hub stopped")
            self.failed.emit(f"{type(exc).__name__}: {exc}")

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        events = self._hub.events
        # Subscribe before reading the store, so nothing appended in between is lost;
        # what arrives twice is skipped by id.
        queue = events.subscribe()
        try:
            last_id = await self._replay(0, self._backlog)
            self._publish()
            next_refresh = loop.time() + self._refresh_s
            while True:
                wait = next_refresh - loop.time()
                if wait <= 0:
                    self._publish()
                    next_refresh = loop.time() + self._refresh_s
                    continue
                try:
                    async with asyncio.timeout(wait):
                        item = await queue.get()
                except TimeoutError:
                    continue
                if item is None:  # the hub dropped our queue: we fell too far behind
                    events.unsubscribe(queue)
                    queue = events.subscribe()
                    last_id = await self._replay(last_id, 1000)
                    self._publish()
                    continue
                if item.id <= last_id:
                    continue
                last_id = item.id
                self._emit(item)
                if item.type.startswith("component."):
                    self._publish()
        finally:
            events.unsubscribe(queue)

    async def _replay(self, after: int, limit: int) -> int:
        """Emit the stored events after ``after``, at most the newest ``limit`` of them."""
        newest = await self._hub.events.last_id()
        start = max(after, newest - limit)
        if after and start > after:
            self.events_skipped.emit(start - after)
        for event in await self._hub.events.since(start, limit):
            self._emit(event)
            after = event.id
        return max(after, start)

    def _emit(self, event: Event) -> None:
        self.event_received.emit(copy.deepcopy(event.as_json()))

    def _publish(self) -> None:
        self.components_changed.emit(self.snapshot())
