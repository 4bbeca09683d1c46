"""The resumable event follower's core: SSE lines in, records and decisions out.

Every stream the hub and its nodes serve (the hub's event log, a run's events, a job's
output) numbers its records, and a client that reopens it with ``Last-Event-ID: N`` gets
exactly the records after N. Following such a stream well is the same work each time:
parse the lines, skip anything already seen, reopen after a cut with a growing delay,
reopen at once after a clean end or a quiet spell, give up after long enough without
progress, and after a long cut decide how much history is still worth replaying.

That work lives here, free of sockets and clocks (the time is passed in), so every rule
is tested with plain values; :mod:`backend.client._stream` is the thin asyncio adapter
that feeds it from an HTTP response.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Record:
    """One server-sent record: its ``id`` (the stream offset), ``event`` name and data."""

    id: int
    event: str
    data: Any


class SseParser:
    """Feeds on the stream's text; a blank line completes a record.

    :meth:`feed_text` takes the text as it arrives, in pieces of any size (a line may be
    split between two); :meth:`feed` takes one line. Comment lines (``:`` first, the
    server's keep-alives) are skipped; a record without ``data`` is dropped, as the SSE
    specification says. Reading whole pieces rather than line by line matters: an HTTP
    client's line iterator costs a few hundred microseconds per event at 500 events a
    second, on the console's own loop.
    """

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}
        self._partial = ""

    def feed_text(self, text: str) -> list[Record]:
        """Every record the text completes (with what was left of the previous piece)."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()  # "" when the text ended with a newline
        records = []
        for line in lines:
            record = self.feed(line.removesuffix("\r"))
            if record is not None:
                records.append(record)
        return records

    def feed(self, line: str) -> Record | None:
        if line.startswith(":"):
            return None
        if line:
            name, _, value = line.partition(":")
            self._fields[name] = value.removeprefix(" ")
            return None
        fields, self._fields = self._fields, {}
        if "data" not in fields:
            return None
        return Record(int(fields.get("id") or 0), fields.get("event", "message"),
                      json.loads(fields["data"]))


@dataclass(frozen=True)
class Reopen:
    """Open the stream again after ``delay_s``, resuming after ``last_id``. (A clean end
    or a quiet spell reopens at once without asking: only a failure backs off.)"""

    delay_s: float
    last_id: int


@dataclass(frozen=True)
class GiveUp:
    """Stop trying: no progress for longer than the follower's patience."""

    last_id: int
    waited_s: float


@dataclass(frozen=True)
class Rebase:
    """Resume after ``last_id`` instead; ``skipped`` records will never be seen."""

    last_id: int
    skipped: int
    restarted: bool = False


class Follower:
    """Where a stream stands and what to do next, for one logical subscription.

    ``after``: the id to resume after (0: from the start). ``patience_s``: how long a run of
    failed reopenings may last before :meth:`failed` says :class:`GiveUp` (None: never).
    Delays start at ``first_delay_s`` and double up to ``max_delay_s``; a record received
    resets both the delay and the patience. Records named in ``terminal`` mark the end of
    the stream without advancing it (a job's ``end`` carries the offset of its last
    output), so they are always handed on.
    """

    def __init__(self, after: int = 0, *, now: float = 0.0, first_delay_s: float = 0.05,
                 max_delay_s: float = 1.0, patience_s: float | None = None,
                 terminal: frozenset[str] = frozenset()) -> None:
        self.last_id = after
        self.terminal = terminal
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.patience_s = patience_s
        self._delay = first_delay_s
        self._progress_at = now

    def headers(self) -> dict[str, str]:
        """What to send when (re)opening: the resume point."""
        return {"Last-Event-ID": str(self.last_id)}

    def received(self, record: Record, now: float) -> bool:
        """True if ``record`` is new and should be handed on; False for a repeat."""
        self._delay = self.first_delay_s
        self._progress_at = now
        if record.event in self.terminal:
            return True
        if record.id and record.id <= self.last_id:
            return False
        if record.id:
            self.last_id = record.id
        return True

    def failed(self, now: float) -> Reopen | GiveUp:
        """The connection failed or was refused with a server error: back off, or give up."""
        waited = now - self._progress_at
        if self.patience_s is not None and waited > self.patience_s:
            return GiveUp(self.last_id, waited)
        delay = self._delay
        self._delay = min(self._delay * 2, self.max_delay_s)
        return Reopen(delay, self.last_id)

    def rebase(self, newest: int, *, backlog: int, catch_up: int) -> Rebase | None:
        """After a cut, given the newest id the server holds now: where to resume.

        A newest id below ours means the server's log started again (a new data dir):
        resume ``backlog`` records before its end. More than ``catch_up`` records missed:
        skip the older ones (a console shows the recent ones, and says how many it
        skipped). Otherwise None: resume where we were.
        """
        if newest < self.last_id:
            self.last_id = max(0, newest - backlog)
            return Rebase(self.last_id, 0, restarted=True)
        if newest - self.last_id > catch_up:
            skipped = newest - catch_up - self.last_id
            self.last_id = newest - catch_up
            return Rebase(self.last_id, skipped)
        return None
