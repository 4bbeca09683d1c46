"""Failed authentication, counted per client address and per presented credential.

A client that fails too often in a window gets **429** with ``Retry-After`` (a WebSocket
handshake or an agent's hello is closed with 1013, "try again later") until the window
ends. Only failures are counted and only failures are refused: a valid token is checked
first and always passes, so the console and the local agents on 127.0.0.1 are never
locked out by someone else's bad guesses from the same address.

Pure logic over a clock, tested without sockets. The HTTP routes and the agent channel
both go through :meth:`FailureThrottle.failure` *after* a credential was refused, and
through :func:`report` for the events, so the two cannot drift apart again (the channel
used to ask before checking, and a valid agent reconnecting from an address someone else
had failed from was refused for the rest of the window: the fuzzer found it).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: Keys kept at most; past it, windows that ended are dropped (then the oldest).
MAX_KEYS = 10_000


@dataclass
class _Window:
    start: float
    count: int = 0


@dataclass(frozen=True)
class Verdict:
    """What :meth:`FailureThrottle.failed` decided about one more failure."""

    #: The failure is within the limit: worth an ``auth.failed`` event.
    report: bool
    #: This failure crossed the limit: worth one ``auth.throttled`` event.
    throttled_now: bool


class FailureThrottle:
    def __init__(self, limit: int = 20, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("the auth-failure limit must be >= 1 and its window > 0 s")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    @staticmethod
    def keys(address: str, credential: str) -> tuple[str, ...]:
        """The counters one failure adds to: its address and (a digest of) its credential,
        so neither many addresses with one credential nor many credentials from one
        address get unlimited tries."""
        keys = [f"addr:{address}"]
        if credential:
            keys.append("cred:" + hashlib.sha256(credential.encode()).hexdigest()[:32])
        return tuple(keys)

    def retry_after(self, keys: Iterable[str]) -> int | None:
        """Whole seconds until these keys may fail again, or None if they may now."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            window = self._windows.get(key)
            if window is None or now - window.start >= self.window_s:
                continue
            if window.count >= self.limit:
                wait = max(wait, window.start + self.window_s - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, keys: Iterable[str]) -> Verdict:
        now = self._clock()
        report, crossed = False, False
        for key in keys:
            window = self._windows.get(key)
            if window is None or now - window.start >= self.window_s:
                window = self._windows[key] = _Window(now)
            window.count += 1
            report = report or window.count <= self.limit
            crossed = crossed or window.count == self.limit
        if len(self._windows) > MAX_KEYS:
            self._prune(now)
        return Verdict(report, crossed)

    def failure(self, keys: Iterable[str]) -> int | Verdict:
        """One more refused credential: the whole seconds to wait when these keys are
        already over the limit (refuse it as "try again later", uncounted), else the
        verdict of counting it. Call it only after the credential was checked, so a
        valid one is never refused."""
        keys = tuple(keys)
        wait = self.retry_after(keys)
        return wait if wait is not None else self.failed(keys)

    def _prune(self, now: float) -> None:
        live = {k: w for k, w in self._windows.items() if now - w.start < self.window_s}
        if len(live) > MAX_KEYS:
            newest = sorted(live.items(), key=lambda kw: kw[1].start)[-MAX_KEYS:]
            live = dict(newest)
        self._windows = live


#: How an event is appended: ``(type, subject, data)`` (the hub's ``EventLog.append``).
Append = Callable[[str, str, dict[str, Any]], Awaitable[Any]]


async def report(verdict: Verdict, append: Append, address: str, path: str, reason: str,
                 **extra: str) -> None:
    """An ``auth.failed`` event (and ``auth.throttled`` as the limit is crossed), at most
    the limit's worth per address and window, so a flood cannot flood the event log."""
    if verdict.report:
        await append("auth.failed", address,
                     {"path": path[:200], "reason": reason[:120], **extra})
    if verdict.throttled_now:
        await append("auth.throttled", address, {"path": path[:200]})
