"""Where a track sits between the speakers: the pan law for mono, the balance for stereo.

Pan ``p`` runs from -1 (hard left) to +1 (hard right).

- A **mono** source is placed by a constant-power (sin/cos) law: with
  ``theta = (p + 1) * pi / 4``, ``L = cos(theta)`` and ``R = sin(theta)``, so
  ``L**2 + R**2 == 1`` everywhere and the centre is ``sqrt(1/2)`` on each side, i.e.
  -3.01 dB. The perceived loudness stays the same as the source moves. (Computed as
  ``sin((1 - p) * pi/4)`` and ``sin((1 + p) * pi/4)`` so the hard positions are exactly 0
  and 1.)
- A **stereo** source is balanced, not panned: the near channel stays at 0 dB and the far
  one follows the same quarter cosine, ``cos(|p| * pi / 2)``. At the centre both channels
  are untouched, so a stereo file keeps its level and image; at +/-1 the far channel is
  silent.
"""

from __future__ import annotations

import math


def pan_gains(pan: float) -> tuple[float, float]:
    """Left and right gains placing a mono signal at ``pan`` with constant power."""
    _check(pan)
    return math.sin((1.0 - pan) * math.pi / 4.0), math.sin((1.0 + pan) * math.pi / 4.0)


def balance_gains(pan: float) -> tuple[float, float]:
    """Left and right gains balancing a stereo signal towards ``pan``."""
    _check(pan)
    far = math.sin((1.0 - abs(pan)) * math.pi / 2.0)
    return (1.0, far) if pan <= 0.0 else (far, 1.0)


def _check(pan: float) -> None:
    if not -1.0 <= pan <= 1.0:
        raise ValueError(f"pan must be within [-1, 1], got {pan}")
