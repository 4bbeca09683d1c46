"""Run a backend coroutine from a Qt slot without blocking, and report how it ended.

A click handler cannot ``await``; it hands the coroutine to :class:`CoroutineRunner`, which runs it
as a task on the shared qasync loop, keeps a reference until it ends (the loop holds only
weak ones), and emits :attr:`CoroutineRunner.failed` with a readable message if it raised. Views
show that message as a non-modal notification, never a modal box.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Signal

from backend.client import ClientError
from backend.errors import ControlRoomError

log = logging.getLogger(__name__)


class CoroutineRunner(QObject):
    """Starts coroutines for the views; one per window."""

    #: ``(what, message)``: an action failed; ``what`` names it for the operator.
    failed = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: set[asyncio.Task[Any]] = set()

    def run(
        self,
        what: str,
        coro: Coroutine[Any, Any, Any],
        on_done: Callable[[Any], None] | None = None,
    ) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=what)
        self._running.add(task)

        def finished(done: asyncio.Task[Any]) -> None:
            self._running.discard(done)
            if done.cancelled():
                return
            exc = done.exception()
            if exc is None:
                if on_done is not None:
                    on_done(done.result())
                return
            if isinstance(exc, ClientError):
                message = exc.message
            elif isinstance(exc, ControlRoomError):  # raised on purpose: already a sentence
                message = str(exc)                   # for a person (a full disk, ...)
            else:
                log.error("%s failed", what, exc_info=exc)
                message = f"{type(exc).__name__}: {exc}"
            self.failed.emit(what, message)

        task.add_done_callback(finished)
        return task

    def pending(self) -> int:
        return len(self._running)

    async def wait_idle(self) -> None:
        """Wait for every running action (used at shutdown and by tests)."""
        while self._running:
            await asyncio.wait(set(self._running))

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()
