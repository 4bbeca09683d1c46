"""Health of one connected component, as a state machine with the clock passed in.

The hub asks "are you alive?" every ``interval_s``; a check counts as missed the moment its
``timeout_s`` expires; the first answer moves half-open to up; ``misses`` missed checks in a
row, or a closed socket, move it to down. An on-time answer brings a down component back up
(a process that was stopped and continued answers again on the same connection).

No I/O and no clock: :meth:`HealthCheck.poll`, :meth:`HealthCheck.answered` and
:meth:`HealthCheck.closed` take the time and return actions for the caller to carry out,
and :meth:`HealthCheck.next_deadline` says when to poll again. That keeps the asyncio loop
around it a few lines long and lets the tests drive every transition with a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Health(StrEnum):
    HALF_OPEN = "half_open"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class HealthSettings:
    interval_s: float = 1.0
    timeout_s: float = 0.5
    misses: int = 3

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.timeout_s <= 0 or self.misses < 1:
            raise ValueError("health interval and timeout must be > 0 and misses >= 1")

    @property
    def hang_detection_s(self) -> float:
        """Worst case from a hang to down: ``interval x misses + timeout``."""
        return self.interval_s * self.misses + self.timeout_s


@dataclass(frozen=True)
class SendPing:
    seq: int


@dataclass(frozen=True)
class Answered:
    seq: int
    rtt_s: float


@dataclass(frozen=True)
class StateChanged:
    old: Health
    new: Health
    reason: str


Action = SendPing | Answered | StateChanged


class HealthCheck:
    """Checks for one connection; created when the component registers (half-open)."""

    def __init__(self, settings: HealthSettings, now: float) -> None:
        self.settings = settings
        self.state = Health.HALF_OPEN
        self.misses_in_a_row = 0
        self._seq = 0
        self._next_ping = now
        self._outstanding: dict[int, float] = {}
        self._closed = False

    def poll(self, now: float) -> list[Action]:
        """Count expired checks and send the next one when it is due."""
        actions: list[Action] = []
        timeout = self.settings.timeout_s
        for seq, sent_at in list(self._outstanding.items()):
            if now >= sent_at + timeout:
                del self._outstanding[seq]
                self.misses_in_a_row += 1
                if self.misses_in_a_row >= self.settings.misses and self.state is not Health.DOWN:
                    actions.append(
                        self._move(
                            Health.DOWN,
                            f"{self.misses_in_a_row} health checks in a row unanswered "
                            f"within {timeout:g} s",
                        )
                    )
        if not self._closed and now >= self._next_ping:
            self._seq += 1
            self._outstanding[self._seq] = now
            self._next_ping += self.settings.interval_s
            if self._next_ping <= now:  # the loop stalled: don't burst to catch up
                self._next_ping = now + self.settings.interval_s
            actions.append(SendPing(self._seq))
        return actions

    def answered(self, seq: int, now: float) -> list[Action]:
        """An answer arrived; late or unknown answers change nothing."""
        sent_at = self._outstanding.pop(seq, None)
        if sent_at is None or self._closed:
            return []
        self.misses_in_a_row = 0
        actions: list[Action] = [Answered(seq, now - sent_at)]
        if self.state is not Health.UP:
            actions.append(self._move(Health.UP, "answered a health check"))
        return actions

    def closed(self, reason: str) -> list[Action]:
        """The socket closed: down at once, and no more checks."""
        self._closed = True
        self._outstanding.clear()
        if self.state is Health.DOWN:
            return []
        return [self._move(Health.DOWN, reason)]

    def next_deadline(self) -> float | None:
        """When :meth:`poll` has something to do next; ``None`` once closed."""
        if self._closed:
            return None
        expiries = [t + self.settings.timeout_s for t in self._outstanding.values()]
        return min([self._next_ping, *expiries])

    def _move(self, new: Health, reason: str) -> StateChanged:
        old, self.state = self.state, new
        return StateChanged(old, new, reason)
