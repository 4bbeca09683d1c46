"""Where a track's audio comes from: files (streamed) and generators (tone, noise, silence).

Every source hands out blocks of exactly the frames asked for, as ``(frames, channels)``
arrays with 1 (mono) or 2 (stereo) channels, at the task's sample rate, zero past its end
(a looping file never ends). The graph places mono in stereo by the pan law and balances
stereo (``pan.py``).

Files are never read whole: a ``SoundFile`` stays open and is read ahead in chunks of about
64k frames into one reused buffer, in the file's *native* sample format (int16 for 16-bit,
int32 for 24/32-bit, float32 or float64 for float files), with the factor to full scale
kept apart (``2**-15``, ``2**-31``, 1). Measured on the reference machine, libsndfile's own
int-to-float conversion costs 16 ms per minute of 16-bit stereo while the native read costs
1.8 ms; scaling in numpy is cheaper still, and the graph folds the factor into the track's
gain so the scaling costs nothing at all. The factors are powers of two, so folding them
gives bit-identical results to converting first. Files at another rate are resampled by
``resample.StreamResampler``.

Generators compute each block from the absolute frame index, so they are exact at any block
size and can seek: the tone's phase is ``(n * f mod rate) / rate``; the noise is numpy's
PCG64 stream for the seed (one 64-bit draw per sample, so seeking is
``bit_generator.advance``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile

from backend.audio.errors import SourceError
from backend.audio.levels import db_to_gain
from backend.audio.resample import StreamResampler
from backend.audio.spec import FileSource, NoiseSource, SilenceSource, SourceSpec, ToneSource

READ_AHEAD_FRAMES = 65536
"""Frames a file source reads per call (rounded up to whole blocks)."""

_NATIVE: dict[str, tuple[str, float]] = {
    "PCM_S8": ("int16", 2.0**-15), "PCM_U8": ("int16", 2.0**-15), "PCM_16": ("int16", 2.0**-15),
    "PCM_24": ("int32", 2.0**-31), "PCM_32": ("int32", 2.0**-31),
    "FLOAT": ("float32", 1.0), "DOUBLE": ("float64", 1.0),
}


class Source(ABC):
    """A block source at the task rate; ``frames`` is its natural length (one pass)."""

    channels: int
    frames: int
    raw_scale: float = 1.0
    """The factor ``read_raw`` blocks need to reach full scale (constant per source)."""

    @abstractmethod
    def read(self, n: int) -> npt.NDArray[np.float64]:
        """The next ``n`` frames as float64 ``(n, channels)``; valid until the next call."""

    def read_raw(self, n: int) -> tuple[npt.NDArray[Any], float]:
        """The next ``n`` frames in the source's native format, and the factor to full scale.

        ``raw * factor`` equals ``read(n)`` exactly; ``factor`` is always ``raw_scale``.
        Valid until the next call.
        """
        return self.read(n), 1.0

    @abstractmethod
    def seek(self, frame: int) -> None:
        """Continue from task frame ``frame``."""

    @abstractmethod
    def close(self) -> None:
        """Release the file, if any."""


def open_source(spec: SourceSpec, sample_rate: int, block_size: int,
                media_dir: Path | None = None) -> Source:
    """The source a track spec describes; ``SourceError`` if a file cannot be used."""
    if isinstance(spec, FileSource):
        if spec.path is None:
            raise SourceError(f"media {spec.sha256} was not fetched from the hub before the "
                              "graph was built (an engine or runner fetches it when it "
                              "accepts the task)")
        path = Path(spec.path)
        if not path.is_absolute() and media_dir is not None:
            path = media_dir / path
        chunk = block_size * -(-READ_AHEAD_FRAMES // block_size)
        return AudioFileSource(path, sample_rate, loop=spec.loop, chunk_frames=chunk)
    if isinstance(spec, ToneSource):
        return ToneGenerator(spec.freq_hz, spec.level_dbfs, _frames(spec.duration_s, sample_rate),
                             sample_rate)
    if isinstance(spec, NoiseSource):
        return NoiseGenerator(spec.level_dbfs, spec.seed, _frames(spec.duration_s, sample_rate))
    if isinstance(spec, SilenceSource):
        return SilenceGenerator(_frames(spec.duration_s, sample_rate))
    raise TypeError(f"unknown source spec {spec!r}")


def _frames(seconds: float, sample_rate: int) -> int:
    return round(seconds * sample_rate)


class _Generator(Source):
    """A mono generator of ``frames`` frames: subclasses fill ``_render(index)``."""

    channels = 1

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self._position = 0

    def read(self, n: int) -> npt.NDArray[np.float64]:
        start = self._position
        self._position += n
        valid = max(0, min(n, self.frames - start))
        out = np.zeros((n, 1))
        if valid:
            out[:valid, 0] = self._render(start, valid)
        return out

    def seek(self, frame: int) -> None:
        self._position = frame

    def close(self) -> None:
        """Nothing to release."""

    @abstractmethod
    def _render(self, start: int, n: int) -> npt.NDArray[np.float64]: ...


class ToneGenerator(_Generator):
    """A sine of peak level ``level_dbfs`` starting at phase 0."""

    def __init__(self, freq_hz: float, level_dbfs: float, frames: int, sample_rate: int) -> None:
        super().__init__(frames)
        self._freq = freq_hz
        self._rate = float(sample_rate)
        self._amplitude = db_to_gain(level_dbfs)

    def _render(self, start: int, n: int) -> npt.NDArray[np.float64]:
        index = np.arange(start, start + n, dtype=np.float64)
        phase = np.mod(index * self._freq, self._rate) * (2.0 * math.pi / self._rate)
        out: npt.NDArray[np.float64] = np.sin(phase) * self._amplitude
        return out


class NoiseGenerator(_Generator):
    """Uniform white noise of RMS level ``level_dbfs``, the same for the same seed."""

    def __init__(self, level_dbfs: float, seed: int, frames: int) -> None:
        super().__init__(frames)
        self._seed = seed
        self._peak = db_to_gain(level_dbfs) * math.sqrt(3.0)  # uniform: rms = peak / sqrt(3)
        self._bits = np.random.PCG64(seed)
        self._rng = np.random.Generator(self._bits)
        self._drawn = 0

    def seek(self, frame: int) -> None:
        super().seek(frame)
        target = min(frame, self.frames)
        if target < self._drawn:
            self._bits = np.random.PCG64(self._seed)
            self._rng = np.random.Generator(self._bits)
            self._drawn = 0
        self._bits.advance(target - self._drawn)
        self._drawn = target

    def _render(self, start: int, n: int) -> npt.NDArray[np.float64]:
        self._drawn += n
        out: npt.NDArray[np.float64] = self._rng.random(n)
        out *= 2.0 * self._peak
        out -= self._peak
        return out


class SilenceGenerator(_Generator):
    """Zeros."""

    def _render(self, start: int, n: int) -> npt.NDArray[np.float64]:
        return np.zeros(n)


class _FileStream:
    """An open sound file read ahead in its native format, looping if asked."""

    def __init__(self, path: Path, loop: bool, chunk_frames: int) -> None:
        try:
            self._file = soundfile.SoundFile(str(path))
        except (OSError, RuntimeError, TypeError) as exc:
            raise SourceError(f"cannot open audio file {str(path)!r}: {exc}") from None
        self.channels = self._file.channels
        self.rate = self._file.samplerate
        self.frames = self._file.frames
        if self.channels not in (1, 2):
            self._file.close()
            raise SourceError(f"{str(path)!r} has {self.channels} channels; only mono and "
                              "stereo files can be track sources")
        if loop and self.frames == 0:
            self._file.close()
            raise SourceError(f"{str(path)!r} is empty and cannot loop")
        dtype, self.scale = _NATIVE.get(self._file.subtype, ("float64", 1.0))
        self._loop = loop
        self._buf: npt.NDArray[Any] = np.empty((chunk_frames, self.channels), dtype=dtype)
        self._have = 0
        self._at = 0

    def read(self, n: int) -> npt.NDArray[Any]:
        """``n`` frames in the native format (zeros past the end); valid until the next call."""
        if self._at + n <= self._have:
            view = self._buf[self._at:self._at + n]
            self._at += n
            return view
        out = np.zeros((n, self.channels), dtype=self._buf.dtype)
        filled = 0
        while filled < n:
            if self._at == self._have and not self._refill():
                break
            take = min(n - filled, self._have - self._at)
            out[filled:filled + take] = self._buf[self._at:self._at + take]
            self._at += take
            filled += take
        return out

    def read_float(self, n: int) -> npt.NDArray[np.float64]:
        """Up to ``n`` frames as float64; fewer only at the end of a non-looping file."""
        parts = []
        got = 0
        while got < n:
            if self._at == self._have and not self._refill():
                break
            take = min(n - got, self._have - self._at)
            parts.append(np.multiply(self._buf[self._at:self._at + take], self.scale,
                                     dtype=np.float64))
            self._at += take
            got += take
        if not parts:
            return np.zeros((0, self.channels))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def seek(self, frame: int) -> None:
        if self._loop:
            frame %= self.frames
        self._file.seek(min(frame, self.frames))
        self._have = self._at = 0

    def close(self) -> None:
        self._file.close()

    def _refill(self) -> bool:
        got = self._file.read(dtype=self._buf.dtype.name, out=self._buf)
        if len(got) == 0 and self._loop:
            self._file.seek(0)
            got = self._file.read(dtype=self._buf.dtype.name, out=self._buf)
        self._have, self._at = len(got), 0
        return self._have > 0


class AudioFileSource(Source):
    """A mono or stereo sound file, streamed, resampled to the task rate when needed."""

    def __init__(self, path: Path, sample_rate: int, *, loop: bool = False,
                 chunk_frames: int = READ_AHEAD_FRAMES) -> None:
        self.path = path
        self._stream = _FileStream(path, loop, chunk_frames)
        self.channels = self._stream.channels
        self.file_rate = self._stream.rate
        self._resampler: StreamResampler | None = None
        self.frames = self._stream.frames
        self.raw_scale = self._stream.scale
        if self.file_rate != sample_rate:
            try:
                self._resampler = StreamResampler(
                    self._stream, self.file_rate, sample_rate,
                    None if loop else self._stream.frames)
            except SourceError:
                self._stream.close()
                raise
            self.frames = -(-self._stream.frames * self._resampler.up // self._resampler.down)
            self.raw_scale = 1.0

    @property
    def resampled(self) -> bool:
        return self._resampler is not None

    def read_raw(self, n: int) -> tuple[npt.NDArray[Any], float]:
        if self._resampler is not None:
            return self._resampler.read(n), 1.0
        return self._stream.read(n), self._stream.scale

    def read(self, n: int) -> npt.NDArray[np.float64]:
        raw, scale = self.read_raw(n)
        if raw.dtype == np.float64 and scale == 1.0:
            return raw
        out: npt.NDArray[np.float64] = np.multiply(raw, scale, dtype=np.float64)
        return out

    def seek(self, frame: int) -> None:
        if self._resampler is not None:
            self._resampler.seek(frame)
        else:
            self._stream.seek(frame)

    def close(self) -> None:
        self._stream.close()
