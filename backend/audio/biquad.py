"""Second-order IIR sections: RBJ cookbook coefficients and a stateful stereo runner.

Coefficients follow Robert Bristow-Johnson's *Audio EQ Cookbook* (peaking, low shelf, high
shelf; ``alpha = sin(w0) / (2 Q)``, ``A = 10 ** (gain_db / 40)``), normalised so
``a0 == 1``. They are the bilinear transform, prewarped at ``f0``, of the analog prototypes
written out in ``docs/audio.md``; the tests check the measured response against those
prototypes, not against this module.

``Section`` runs one biquad over both channels in one ``scipy.signal.lfilter`` call
(``axis=0``, transposed direct form II state ``zi`` kept between blocks). lfilter is the
fastest recursion available to pure numpy/scipy here (about 7 ns per sample; sosfilt costs
~50 us more per call, and block-GEMM, FFT and cumulative-sum formulations measured slower
at our block sizes). When the coefficients change, the new state is derived from the last
two inputs and outputs (``lfiltic``-style), i.e. the section behaves like a direct form I
filter whose history is kept: the standard way to change an IIR's coefficients without a
click.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from backend.audio.blocks import FloatBlock
from backend.audio.scipy_signal import lfilter_state

BandType = Literal["peaking", "low_shelf", "high_shelf"]


@dataclass(frozen=True)
class Coefficients:
    """``b = (b0, b1, b2)``, ``a = (1, a1, a2)`` of one normalised biquad."""

    b: tuple[float, float, float]
    a: tuple[float, float, float]


def rbj(kind: BandType, freq_hz: float, gain_db: float, q: float,
        sample_rate: float) -> Coefficients:
    """The cookbook biquad for a peaking or shelving band."""
    big_a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    cos_w0 = math.cos(w0)
    alpha = math.sin(w0) / (2.0 * q)
    if kind == "peaking":
        b = (1.0 + alpha * big_a, -2.0 * cos_w0, 1.0 - alpha * big_a)
        a = (1.0 + alpha / big_a, -2.0 * cos_w0, 1.0 - alpha / big_a)
    else:
        root = 2.0 * math.sqrt(big_a) * alpha
        ap, am = big_a + 1.0, big_a - 1.0
        if kind == "low_shelf":
            b = (big_a * (ap - am * cos_w0 + root), 2.0 * big_a * (am - ap * cos_w0),
                 big_a * (ap - am * cos_w0 - root))
            a = (ap + am * cos_w0 + root, -2.0 * (am + ap * cos_w0), ap + am * cos_w0 - root)
        elif kind == "high_shelf":
            b = (big_a * (ap + am * cos_w0 + root), -2.0 * big_a * (am + ap * cos_w0),
                 big_a * (ap + am * cos_w0 - root))
            a = (ap - am * cos_w0 + root, 2.0 * (am - ap * cos_w0), ap - am * cos_w0 - root)
        else:
            raise ValueError(f"unknown band type {kind!r}")
    a0 = a[0]
    return Coefficients((b[0] / a0, b[1] / a0, b[2] / a0), (1.0, a[1] / a0, a[2] / a0))


class Section:
    """One biquad filtering stereo blocks, state kept across blocks and coefficient changes."""

    def __init__(self, coefficients: Coefficients) -> None:
        self._set(coefficients)
        self.reset()

    def reset(self) -> None:
        """Silence the filter's memory."""
        self._zi = np.zeros((2, 2))
        self._x_hist = np.zeros((2, 2))  # last two input frames, oldest first
        self._y_hist = np.zeros((2, 2))  # last two output frames, oldest first

    def retune(self, coefficients: Coefficients) -> None:
        """New coefficients; the state is recomputed from the kept input/output history."""
        self._set(coefficients)
        _, b1, b2 = coefficients.b
        _, a1, a2 = coefficients.a
        x2, x1 = self._x_hist
        y2, y1 = self._y_hist
        self._zi = np.stack([b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2, b2 * x1 - a2 * y1])

    def process(self, block: FloatBlock) -> FloatBlock:
        """The filtered block (new array); ``block`` is not modified."""
        out, self._zi = lfilter_state(self._b, self._a, block, 0, self._zi)
        self._x_hist = _last_two(self._x_hist, block)
        self._y_hist = _last_two(self._y_hist, out)
        result: FloatBlock = out
        return result

    def _set(self, coefficients: Coefficients) -> None:
        self.coefficients = coefficients
        self._b = np.array(coefficients.b)
        self._a = np.array(coefficients.a)


def _last_two(previous: npt.NDArray[np.float64], block: FloatBlock) -> npt.NDArray[np.float64]:
    if block.shape[0] >= 2:
        return block[-2:].copy()
    return np.concatenate([previous, block])[-2:]
