"""Bus meters: per-channel peak, RMS, peak hold and clip counts, updated once per block.

- **Peak**: the largest absolute sample of the latest block, in dBFS.
- **RMS**: over a sliding window of the latest whole blocks covering at least
  ``rms_window_s`` (300 ms by default, the usual integration time of a loudness-oriented
  meter; per-block RMS would flicker with the block size). A full-scale sine reads 0 dBFS
  peak and -3.01 dBFS RMS.
- **Peak hold**: the highest peak, held for ``hold_s`` (1.5 s), then falling at
  ``fall_db_per_s`` (20 dB/s) until a new peak catches it.
- **Clips**: samples beyond +/-1.0 (over 0 dBFS), counted per channel since the start
  (or the last ``reset``). Only counted when the block's peak is over, so it costs nothing
  in the normal case.

Readings never go below ``levels.FLOOR_DB`` (-120 dBFS), so silence is a number. The engine
emits ``reading()`` at its own rate (at least 20 Hz); each block is ~21 ms at 1024 frames
and 48 kHz, so no peak between two emissions is lost from the hold.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from backend.audio.blocks import FloatBlock, channel_overs, channel_peaks, channel_sumsq
from backend.audio.levels import FLOOR_DB, gain_to_db

Pair = tuple[float, float]


@dataclass(frozen=True)
class MeterReading:
    """One snapshot of the bus meters; each pair is (left, right)."""

    peak_dbfs: Pair
    rms_dbfs: Pair
    peak_hold_dbfs: Pair
    clips: tuple[int, int]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (lists for the pairs)."""
        return {key: list(value) for key, value in asdict(self).items()}


SILENT = MeterReading((FLOOR_DB, FLOOR_DB), (FLOOR_DB, FLOOR_DB), (FLOOR_DB, FLOOR_DB), (0, 0))


class Meter:
    """Stereo meter fed block by block; ``reading()`` is safe to call from another thread."""

    def __init__(self, sample_rate: int, *, rms_window_s: float = 0.3, hold_s: float = 1.5,
                 fall_db_per_s: float = 20.0) -> None:
        self.sample_rate = sample_rate
        self.rms_window_frames = max(1, round(rms_window_s * sample_rate))
        self.hold_s = hold_s
        self.fall_db_per_s = fall_db_per_s
        self.reset()

    def reset(self) -> None:
        """Back to silence, clip counts to zero."""
        self._window: deque[tuple[int, float, float]] = deque()
        self._window_frames = 0
        self._hold = [FLOOR_DB, FLOOR_DB]
        self._hold_age = [0.0, 0.0]
        self._clips = [0, 0]
        self._reading = SILENT

    def update(self, block: FloatBlock) -> MeterReading:
        """Account for one bus block and return the new reading."""
        frames = block.shape[0]
        if frames == 0:
            return self._reading
        dt = frames / self.sample_rate
        peaks = channel_peaks(block)
        left_sq, right_sq = channel_sumsq(block)
        self._window.append((frames, left_sq, right_sq))
        self._window_frames += frames
        while self._window_frames - self._window[0][0] >= self.rms_window_frames:
            self._window_frames -= self._window.popleft()[0]
        if peaks[0] > 1.0 or peaks[1] > 1.0:
            overs = channel_overs(block)
            self._clips[0] += overs[0]
            self._clips[1] += overs[1]
        peak_db = (gain_to_db(peaks[0]), gain_to_db(peaks[1]))
        for ch in (0, 1):
            if peak_db[ch] >= self._hold[ch]:
                self._hold[ch], self._hold_age[ch] = peak_db[ch], 0.0
                continue
            self._hold_age[ch] += dt
            if self._hold_age[ch] > self.hold_s:
                falling = min(dt, self._hold_age[ch] - self.hold_s)
                self._hold[ch] = max(peak_db[ch], self._hold[ch] - self.fall_db_per_s * falling)
        total_l = sum(w[1] for w in self._window)
        total_r = sum(w[2] for w in self._window)
        rms = (gain_to_db((total_l / self._window_frames) ** 0.5),
               gain_to_db((total_r / self._window_frames) ** 0.5))
        self._reading = MeterReading(peak_db, rms, (self._hold[0], self._hold[1]),
                                     (self._clips[0], self._clips[1]))
        return self._reading

    def reading(self) -> MeterReading:
        """The latest snapshot."""
        return self._reading
