"""The ``saturator`` model: tape-style soft clipping with level compensation.

The curve, per sample, with ``g = 10 ** (drive_db / 20)``::

    wet = tanh(g * x) / g
    out = (1 - mix) * x + mix * wet

The input is driven up by ``drive_db`` into ``tanh`` and brought back down by the same
amount: that is the level compensation. Its slope at zero is exactly 1, so quiet material
passes at unity gain whatever the drive, while peaks bend smoothly towards ``+/-1/g`` (a
0 dBFS peak at 6 dB drive comes out at ``tanh(2) / 2`` = -6.3 dBFS): the harder the drive,
the lower the ceiling and the denser the sound, with odd harmonics only, like a tape at
high level. ``wet`` is odd, strictly increasing and bounded by ``1/g <= 1``; ``out`` is
strictly increasing for every ``mix``. Both dry and wet have unity small-signal gain, so
the mix never comb-filters or jumps in level. The curve is memoryless; a change of drive
is ramped frame by frame over the next block so it cannot step the waveform.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from backend.audio.blocks import FloatBlock, scale_frames
from backend.audio.instance import Model, Params
from backend.audio.levels import db_to_gain


class SaturatorParams(Params):
    """Parameters of the ``saturator`` model."""

    drive_db: float = Field(default=6.0, ge=0.0, le=36.0, description="drive into the curve")
    mix: float = Field(default=1.0, ge=0.0, le=1.0, description="0 = dry, 1 = fully saturated")


class Saturator(Model[SaturatorParams]):
    """``tanh`` soft clip with drive, compensation and dry/wet mix."""

    name: ClassVar[str] = "saturator"
    params_type: ClassVar[type[SaturatorParams]] = SaturatorParams

    def _configure(self, old: SaturatorParams | None, new: SaturatorParams) -> None:
        self._drive = db_to_gain(new.drive_db)
        self._ramp_from = None if old is None else db_to_gain(old.drive_db)

    def _process(self, block: FloatBlock) -> FloatBlock:
        start, self._ramp_from = self._ramp_from, None
        mix = self._p.mix
        if start is None or start == self._drive:
            wet = np.tanh(block * self._drive)
            wet *= 1.0 / self._drive
        else:
            frames = block.shape[0]
            drive = start + (self._drive - start) * (np.arange(1, frames + 1) / frames)
            wet = scale_frames(np.tanh(scale_frames(block, drive)), 1.0 / drive)
        if mix >= 1.0:
            return wet
        wet *= mix
        wet += (1.0 - mix) * block
        return wet
