"""Send a dragged control's changes without flooding the hub: at most one request per instance
in flight, at most one every SEND_INTERVAL_S, always with the newest values.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from backend.client import ClientError

#: At most one parameter change per instance this often (20 a second) while dragging.
SEND_INTERVAL_S = 0.05


Patch = dict[str, Any]


Schedule = Callable[[Coroutine[Any, Any, Any]], object]


class Coalescer:
    """One instance's parameter changes: newest values win, one request at a time, paced.

    ``submit`` merges a change into what is pending. A request starts when none is in
    flight and :data:`SEND_INTERVAL_S` has passed since the last one started; when it ends,
    ``done(patch, error)`` is called and whatever was merged meanwhile goes next. So a
    drag sends at most 20 requests a second, and the final position is always sent last.
    Asyncio only (no Qt): ``run`` starts the request coroutine (the window's
    :class:`~ui.core.coroutines.CoroutineRunner`, which reports anything unexpected).
    """

    def __init__(self, send: Callable[[Patch], Awaitable[None]],
                 done: Callable[[Patch, ClientError | None], None], run: Schedule,
                 interval_s: float = SEND_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._done = done
        self._run = run
        self._interval = interval_s
        self._clock = clock
        self.pending: Patch = {}
        self.in_flight: Patch | None = None
        self.sent = 0
        self._last_start = -math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def busy(self) -> bool:
        """Something is waiting to be sent or on its way."""
        return bool(self.pending) or self.in_flight is not None

    def holds(self, name: str) -> bool:
        return name in self.pending or (self.in_flight is not None and name in self.in_flight)

    def submit(self, params: Patch) -> None:
        self.pending.update(params)
        self._schedule()

    def close(self) -> None:
        """Stop sending (the task or the view went away); a request on its way ends quietly."""
        self._closed = True
        self.pending = {}
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        if self._closed or self.in_flight is not None or self._timer is not None \
                or not self.pending:
            return
        wait = self._last_start + self._interval - self._clock()
        if wait <= 0:
            self._start()
        else:
            self._timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._schedule()

    def _start(self) -> None:
        patch, self.pending = self.pending, {}
        self.in_flight = patch
        self._last_start = self._clock()
        self.sent += 1
        self._run(self._request(patch))

    async def _request(self, patch: Patch) -> None:
        error: ClientError | None = None
        try:
            await self._send(patch)
        except ClientError as exc:
            error = exc
        except Exception as exc:  # shown inline too; CoroutineRunner also reports and logs it
            error = ClientError(f"{type(exc).__name__}: {exc}", 500)
            raise
        finally:
            self.in_flight = None
            if not self._closed:
                self._done(patch, error)
                self._schedule()
