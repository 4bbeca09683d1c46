"""The ``gain`` model: a trim, the simplest instance and the reference for the others.

A change of ``gain_db`` is ramped linearly, frame by frame, across the next block (from the
old factor to the new), so moving a trim while audio plays never steps the waveform.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from backend.audio.blocks import FloatBlock, scale_frames
from backend.audio.instance import Model, Params
from backend.audio.levels import db_to_gain


class GainParams(Params):
    """Parameters of the ``gain`` model."""

    gain_db: float = Field(default=0.0, ge=-60.0, le=24.0, description="trim in dB")


class Gain(Model[GainParams]):
    """Multiplies both channels by ``gain_db``; ramps changes over one block."""

    name: ClassVar[str] = "gain"
    params_type: ClassVar[type[GainParams]] = GainParams

    def _configure(self, old: GainParams | None, new: GainParams) -> None:
        self._gain = db_to_gain(new.gain_db)
        self._ramp_from = None if old is None else db_to_gain(old.gain_db)

    def _process(self, block: FloatBlock) -> FloatBlock:
        start, self._ramp_from = self._ramp_from, None
        if start is None or start == self._gain:
            return block * self._gain
        frames = block.shape[0]
        ramp = start + (self._gain - start) * (np.arange(1, frames + 1) / frames)
        return scale_frames(block, ramp)
