"""The ``compressor`` model: feed-forward, stereo-linked, log-domain, decoupled peak detector.

The design is the one Giannoulis, Massberg and Reiss recommend ("Digital Dynamic Range
Compressor Design - A Tutorial and Analysis", JAES 60(6), 2012), computed a block at a time:

1. **Detector**: per frame, the louder of the two channels, ``max(|L|, |R|)``, in dBFS
   (stereo link: both channels always get the same gain, so the image does not shift).
2. **Gain computer** (static curve): for input level ``x`` and threshold ``T``, ratio
   ``R``, knee width ``W``, the wanted gain reduction is ``0`` below the knee,
   ``(1 - 1/R) * (x - T)`` above it, and ``(1 - 1/R) * (x - T + W/2)**2 / (2 W)`` inside
   it. Output level above threshold is therefore ``T + (x - T) / R``.
3. **Smoothing** in the dB domain, the "decoupled" peak detector:
   ``y1[n] = max(g[n], aR * y1[n-1])`` (instant attack, exponential release) then
   ``y[n] = aA * y[n-1] + (1 - aA) * y1[n]`` (the attack), with
   ``a = exp(-1 / (time_constant * sample_rate))``: attack and release are time constants
   (time to 63 % of a step, in dB).
4. **Gain**: ``10 ** ((makeup_db - y) / 20)`` applied to both channels.

Both recursions are vectorised. The attack is a linear one-pole, so ``lfilter`` runs it
with its state carried between blocks. The release is a max-recursion; it unrolls to
``y1[n] = aR**n * max(aR * y1[-1], max_k<=n g[k] * aR**-k)``, i.e. one
``np.maximum.accumulate`` over ``g * aR**-k`` (tables precomputed per time constant, in
chunks short enough that ``aR**-k`` stays far from overflow). No per-sample Python loop.

Smoothing happens after the gain computer, so moving threshold or ratio while playing glides
at the attack/release speed instead of stepping. ``report()`` gives the gain reduction in
dB as a positive number: the current value (end of the last block) and the block's maximum.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from backend.audio.blocks import FloatBlock, scale_frames
from backend.audio.instance import Model, Params
from backend.audio.scipy_signal import lfilter

_LN10_OVER_20 = math.log(10.0) / 20.0
_SILENCE = 1e-10  # -200 dBFS: the detector's floor, keeps log10 finite
_EXP_LIMIT = 600.0  # keep aR**-k below e**600 (float64 overflows near e**709)
_MAX_CHUNK = 8192  # the largest block a task may use; longer blocks take several chunks


class CompressorParams(Params):
    """Parameters of the ``compressor`` model."""

    threshold_db: float = Field(default=-18.0, ge=-60.0, le=0.0, description="dBFS")
    ratio: float = Field(default=4.0, ge=1.0, le=20.0, description="input:output above threshold")
    attack_ms: float = Field(default=10.0, ge=0.1, le=500.0, description="time constant")
    release_ms: float = Field(default=100.0, ge=1.0, le=5000.0, description="time constant")
    makeup_db: float = Field(default=0.0, ge=0.0, le=24.0, description="gain after compression")
    knee_db: float = Field(default=0.0, ge=0.0, le=24.0, description="soft knee width; 0 = hard")


class Compressor(Model[CompressorParams]):
    """Stereo-linked feed-forward compressor; reports its gain reduction."""

    name: ClassVar[str] = "compressor"
    params_type: ClassVar[type[CompressorParams]] = CompressorParams
    #: The release tables restart at every block, so the last bits depend on where blocks
    #: start: the graph hands it the spec's blocks even when it reads larger ones.
    block_dependent: ClassVar[bool] = True

    def _configure(self, old: CompressorParams | None, new: CompressorParams) -> None:
        rate = float(self.sample_rate)
        self._attack = math.exp(-1.0 / (new.attack_ms * 1e-3 * rate))
        self._release = math.exp(-1.0 / (new.release_ms * 1e-3 * rate))
        chunk = int(_EXP_LIMIT / (-math.log(self._release)))
        self._chunk = max(1, min(chunk, _MAX_CHUNK))
        self._tables: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
        if old is None:
            self._held = 0.0  # y1[-1], dB of reduction
            self._smoothed = 0.0  # y[-1]
            self._block_max = 0.0

    def report(self) -> dict[str, float]:
        return {"gain_reduction_db": self._smoothed, "max_gain_reduction_db": self._block_max}

    def gain_reduction(self, level_db: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The static curve: wanted gain reduction (dB, >= 0) for detector levels in dBFS."""
        p = self._p
        slope = 1.0 - 1.0 / p.ratio
        over = level_db - p.threshold_db
        if p.knee_db <= 0.0:
            return np.maximum(over, 0.0) * slope
        half = p.knee_db / 2.0
        inside = np.clip(over + half, 0.0, p.knee_db)
        return slope * (inside * inside / (2.0 * p.knee_db) + np.maximum(over - half, 0.0))

    def _process(self, block: FloatBlock) -> FloatBlock:
        level = np.maximum(np.abs(block[:, 0]), np.abs(block[:, 1]))
        np.maximum(level, _SILENCE, out=level)
        wanted = self.gain_reduction(20.0 * np.log10(level))
        held = self._release_hold(wanted)
        smoothed: npt.NDArray[np.float64] = lfilter(
            [1.0 - self._attack], [1.0, -self._attack], held, zi=[self._attack * self._smoothed]
        )[0]
        self._smoothed = float(smoothed[-1])
        self._block_max = float(smoothed.max())
        gains = np.exp((self._p.makeup_db - smoothed) * _LN10_OVER_20)
        return scale_frames(block, gains)

    def _release_hold(self, wanted: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``y1[n] = max(wanted[n], aR * y1[n-1])``, vectorised chunk by chunk."""
        out = np.empty_like(wanted)
        inverse, forward = self._power_tables()
        held, alpha = self._held, self._release
        for start in range(0, wanted.shape[0], self._chunk):
            part = wanted[start:start + self._chunk]
            n = part.shape[0]
            scaled = part * inverse[:n]
            scaled[0] = max(scaled[0], alpha * held)
            np.maximum.accumulate(scaled, out=scaled)
            np.multiply(scaled, forward[:n], out=out[start:start + n])
            held = float(out[start + n - 1])
        self._held = held
        return out

    def _power_tables(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        if self._tables is None:
            k = np.arange(self._chunk, dtype=np.float64)
            log_alpha = math.log(self._release)
            self._tables = (np.exp(-k * log_alpha), np.exp(k * log_alpha))
        return self._tables
