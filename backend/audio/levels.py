"""Decibels: the one conversion every part of the audio core shares.

Levels are dBFS against a full scale of 1.0 (a sine of peak 1.0 is 0 dBFS peak, -3.01 dBFS
RMS). Silence has no finite level, so readings stop at ``FLOOR_DB``; that keeps meters and
reports plain JSON numbers (JSON has no -inf).
"""

from __future__ import annotations

import math

FLOOR_DB = -120.0
"""The lowest level a meter or report shows; anything quieter (and silence) reads as this."""


def db_to_gain(db: float) -> float:
    """Linear amplitude factor of a gain in dB (+6.02 dB doubles the amplitude)."""
    return float(10.0 ** (db / 20.0))


def gain_to_db(gain: float, floor: float = FLOOR_DB) -> float:
    """Level in dB of a linear amplitude, never below ``floor``."""
    if gain <= 0.0:
        return floor
    return max(floor, 20.0 * math.log10(gain))
