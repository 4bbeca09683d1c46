"""Progress from a job's output: the last line of the form ``progress 0.42``.

Fed the output in whatever pieces it arrives (a line may be split between two reads);
pure, so the rule is tested without a process.
"""

from __future__ import annotations

import re

_LINE = re.compile(rb"^\s*progress[:=]?\s+([0-9]*\.?[0-9]+)\s*(%?)\s*$")


class ProgressParser:
    def __init__(self) -> None:
        self.offset = 0
        self.latest: float | None = None
        self._partial = b""

    def feed(self, data: bytes) -> float | None:
        """Take the next bytes of output; returns the latest progress seen so far."""
        self.offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()[-4096:]
        for line in lines:
            match = _LINE.match(line.rstrip(b"\r"))
            if match:
                value = float(match.group(1)) / (100.0 if match.group(2) else 1.0)
                self.latest = min(1.0, max(0.0, value))
        return self.latest
