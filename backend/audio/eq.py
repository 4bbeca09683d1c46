"""The ``eq`` model: a parametric equaliser, a cascade of RBJ biquads (peaking and shelves).

Each band is one ``biquad.Section``; the block goes through the bands in list order, both
channels at once. Changing parameters replaces the band list; band ``i`` of the new list
inherits the input/output history of band ``i`` of the old one, so a sweep of frequency,
gain or Q while playing does not click. Bands added at the end start from silence.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from backend.audio.biquad import BandType, Section, rbj
from backend.audio.blocks import FloatBlock
from backend.audio.instance import Model, Params

MAX_BANDS = 16


class Band(Params):
    """One EQ band. For shelves, ``q`` = 1/sqrt(2) is the cookbook's steepest monotone slope
    (S = 1); higher values overshoot around the corner like an analog shelf with a bump."""

    type: BandType = Field(default="peaking", description="peaking, low_shelf or high_shelf")
    freq_hz: float = Field(default=1000.0, ge=10.0, le=20000.0, description="centre or corner")
    gain_db: float = Field(default=0.0, ge=-24.0, le=24.0, description="boost (+) or cut (-) in dB")
    q: float = Field(default=0.7071067811865476, ge=0.1, le=18.0, description="quality factor")


class EqParams(Params):
    """Parameters of the ``eq`` model."""

    bands: tuple[Band, ...] = Field(default=(), max_length=MAX_BANDS, description="in order")


class Eq(Model[EqParams]):
    """Parametric EQ; ``set_params({"bands": [...]})`` replaces the whole band list."""

    name: ClassVar[str] = "eq"
    params_type: ClassVar[type[EqParams]] = EqParams

    def _configure(self, old: EqParams | None, new: EqParams) -> None:
        coefficients = [rbj(b.type, b.freq_hz, b.gain_db, b.q, self.sample_rate)
                        for b in new.bands]
        if old is None:
            self._sections = [Section(c) for c in coefficients]
            return
        sections = []
        for i, c in enumerate(coefficients):
            if i < len(self._sections):
                section = self._sections[i]
                if section.coefficients != c:
                    section.retune(c)
            else:
                section = Section(c)
            sections.append(section)
        self._sections = sections

    def _process(self, block: FloatBlock) -> FloatBlock:
        out = block
        for section in self._sections:
            out = section.process(out)
        return out.copy() if out is block else out
