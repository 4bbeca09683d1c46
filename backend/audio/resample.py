"""Streaming sample-rate conversion: whole-signal ``resample_poly`` quality, block by block.

A file whose rate differs from the task's is converted by ``scipy.signal.resample_poly``
(polyphase FIR, the rate ratio reduced to ``up/down``, a Kaiser-windowed sinc with
``beta = 5`` and ``10 * max(up, down)`` taps each side of the centre: scipy's defaults,
designed once here and passed in as the ``window`` array so no call redesigns the filter).

Streaming without seams: the input is cut into chunks of ``step`` samples, ``step`` a
multiple of ``down``, and each chunk is resampled together with ``context`` input samples
on both sides (also a multiple of ``down``, and longer than the filter's half-length). An
input offset that is a multiple of ``down`` maps to a whole output sample, so the outputs
that belong to the chunk's interior are exactly the outputs ``resample_poly`` would give on
the whole signal (same taps, same input samples, same order of summation); the context
outputs are dropped. A test checks streamed against whole-file output. Memory is a couple
of chunks per source, whatever the file length.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

from backend.audio.errors import SourceError
from backend.audio.scipy_signal import firwin, resample_poly

MAX_RATIO_TERM = 1000
"""Largest reduced ``up`` or ``down`` accepted (44.1k <-> 48k is 160/147)."""

_STEP_TARGET = 8192


class FloatStream(Protocol):
    """What the resampler pulls from: float64 frames, fewer than asked only at the end."""

    channels: int

    def read_float(self, n: int) -> npt.NDArray[np.float64]: ...

    def seek(self, frame: int) -> None: ...


class StreamResampler:
    """Pulls input frames at ``rate_in`` and hands out frames at ``rate_out``."""

    def __init__(self, stream: FloatStream, rate_in: int, rate_out: int,
                 input_frames: int | None) -> None:
        g = math.gcd(rate_in, rate_out)
        self.up, self.down = rate_out // g, rate_in // g
        if max(self.up, self.down) > MAX_RATIO_TERM:
            raise SourceError(
                f"cannot resample {rate_in} Hz to {rate_out} Hz: the ratio "
                f"{self.up}/{self.down} needs too long a filter (limit {MAX_RATIO_TERM})")
        self._stream = stream
        self._channels = stream.channels
        half_len = 10 * max(self.up, self.down)
        self._taps = firwin(2 * half_len + 1, 1.0 / max(self.up, self.down),
                            window=("kaiser", 5.0))
        need = half_len // self.up + 2
        self._context = self.down * -(-need // self.down)
        self._step = self.down * max(1, round(_STEP_TARGET / self.down))
        self.output_frames = (None if input_frames is None
                              else -(-input_frames * self.up // self.down))
        self.seek(0)

    def seek(self, frame: int) -> None:
        """Continue output from output frame ``frame``."""
        chunk = frame // self.up
        self._next_in = chunk * self.down
        start = self._next_in - self._context
        self._stream.seek(max(0, start))
        lead = max(0, -start)
        self._buf = np.zeros((lead, self._channels))
        self._buf_start = start
        self._out = np.zeros((0, self._channels))
        self._skip = frame - chunk * self.up
        self._position = frame

    def read(self, n: int) -> npt.NDArray[np.float64]:
        """The next ``n`` output frames (zeros after the end of a finite input)."""
        need = n + self._skip
        while self._out.shape[0] < need:
            self._out = np.concatenate([self._out, self._chunk()])
        if self._skip:
            self._out = self._out[self._skip:]
            self._skip = 0
        block = self._out[:n]
        self._out = self._out[n:]
        if self.output_frames is not None:
            valid = self.output_frames - self._position
            if valid < n:
                block = block.copy()
                block[max(valid, 0):] = 0.0
        self._position += n
        return block

    def _chunk(self) -> npt.NDArray[np.float64]:
        first = self._next_in - self._context
        last = self._next_in + self._step + self._context
        have = self._buf_start + self._buf.shape[0]
        if have < last:
            pulled = self._stream.read_float(last - have)
            missing = last - have - pulled.shape[0]
            pieces = [self._buf, pulled]
            if missing:
                pieces.append(np.zeros((missing, self._channels)))
            self._buf = np.concatenate(pieces)
        segment = self._buf[first - self._buf_start:last - self._buf_start]
        out = resample_poly(segment, self.up, self.down, window=self._taps, axis=0)
        keep_from = self._context * self.up // self.down
        keep = self._step * self.up // self.down
        self._next_in += self._step
        drop = self._next_in - self._context - self._buf_start
        self._buf = self._buf[drop:]
        self._buf_start += drop
        result: npt.NDArray[np.float64] = out[keep_from:keep_from + keep]
        return result
