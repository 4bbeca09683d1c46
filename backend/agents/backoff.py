"""Reconnect delays: capped exponential backoff with full jitter.

Attempt ``n`` (from 0) waits a uniformly random time in ``[0, min(cap, start * factor**n)]``
(AWS's "full jitter"): a fleet of agents that lost the same hub spreads its reconnects
instead of arriving in waves. The random source is passed in so the schedule is testable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    start_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt ``attempt`` may wait."""
        # Cap the exponent so huge attempt counts cannot overflow a float.
        return min(self.cap_s, self.start_s * self.factor ** min(attempt, 64))

    def next_delay(self) -> float:
        delay = self.rng.uniform(0.0, self.ceiling(self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """After a successful registration the next loss starts from the beginning."""
        self.attempt = 0
