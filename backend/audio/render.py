"""Offline render: the task's graph, as fast as the chain allows, into a WAV file.

The render streams block by block into a temporary file next to the target
(``.<name>.partial``), and renames it over the target only when complete, so a cancelled
or failed render never leaves a half-written file behind or clobbers an earlier render.
On cancel (``threading.Event`` set; checked between blocks) the partial file is deleted and
a ``RenderResult`` with ``status="cancelled"`` is returned; an error in a source or an
instance deletes it too and propagates.

Formats: ``wav24`` (PCM 24-bit: each sample rounded to the nearest 24-bit step and clipped
to full scale, with no dither, so the file is a deterministic function of the mix) or
``float32`` (IEEE float; overs are kept), written by ``wavfile.WavWriter``. Beyond 4 GiB
the container switches to RF64.

Determinism: the graph's block order is fixed, the generators are seeded, the file reads
and resampling are exact functions of the input, so two renders of the same spec (same
block size, same files, same machine and library builds) are bit-identical; the tests hash
them. Transcendental functions (``tanh``, ``log10``, ``exp``) may differ in the last bit
between CPUs whose NumPy dispatches different SIMD kernels.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from backend.audio.levels import FLOOR_DB
from backend.audio.meters import MeterReading
from backend.audio.wavfile import WIDTH, RenderFormat, WavWriter

_WAV_LIMIT = 4 * 1024**3 - 1024 * 1024  # leave room for the header chunks
_PROGRESS_STEP = 0.005


@dataclass(frozen=True)
class RenderResult:
    """What a render did. ``path`` is None when cancelled (the partial file is gone)."""

    status: Literal["completed", "cancelled"]
    path: Path | None
    frames: int
    sample_rate: int
    elapsed_s: float
    peak_dbfs: tuple[float, float]
    clips: tuple[int, int]

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def speed(self) -> float:
        """Rendered audio time over wall time (e.g. 300.0 = 300x real time)."""
        return self.duration_s / self.elapsed_s if self.elapsed_s > 0 else float("inf")


class Blocks(Protocol):
    """What a render reads its bus from: a :class:`~backend.audio.graph.Graph`, or a farm
    render's chunk streams summed (``farm.ChunkStreams``)."""

    sample_rate: int
    total_frames: int

    @property
    def duration_s(self) -> float: ...
    def seek(self, frame: int) -> None: ...
    def read_ahead(self, until_frame: int) -> None: ...
    def next_block(self, max_frames: int | None = None) -> np.ndarray | None: ...
    def meters(self) -> MeterReading: ...


def render(graph: Blocks, path: str | os.PathLike[str], fmt: RenderFormat = "wav24",
           progress: Callable[[float], None] | None = None,
           cancel: threading.Event | None = None,
           segment: tuple[float, float] | None = None) -> RenderResult:
    """Render ``graph`` (or the ``segment`` from ``start_s`` to ``end_s``) to ``path``.

    ``progress`` receives the completed fraction (0..1) at least every 0.5 % and once with
    1.0 at the end; it runs on the rendering thread, so keep it short (e.g. hand the value
    to an event loop with ``call_soon_threadsafe``). A segment render starts its instances
    from silence at ``start_s`` (see ``Graph.seek``).
    """
    if fmt not in WIDTH:
        raise ValueError(f"unknown render format {fmt!r} (use 'wav24' or 'float32')")
    target = Path(path)
    start, end = segment_frames(graph, segment)
    graph.seek(start)
    graph.read_ahead(end)
    total = end - start
    rf64 = total * 2 * WIDTH[fmt] > _WAV_LIMIT
    partial = target.with_name(f".{target.name}.partial")
    began = time.perf_counter()
    peaks = [FLOOR_DB, FLOOR_DB]
    done = 0
    reported = 0.0
    try:
        with WavWriter(partial, graph.sample_rate, 2, fmt, expected_frames=total,
                       rf64=rf64) as out:
            while done < total:
                if cancel is not None and cancel.is_set():
                    break
                block = graph.next_block(total - done)
                if block is None:
                    break
                reading = graph.meters()
                peaks = [max(peaks[0], reading.peak_dbfs[0]), max(peaks[1], reading.peak_dbfs[1])]
                out.write(block)  # the bus block is the render's own: wav24 scales it in place
                done += block.shape[0]
                if progress is not None and done / total - reported >= _PROGRESS_STEP:
                    reported = done / total
                    progress(reported)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    elapsed = time.perf_counter() - began
    clips = graph.meters().clips
    if done < total:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        return RenderResult("cancelled", None, done, graph.sample_rate, elapsed,
                            (_floor(peaks[0]), _floor(peaks[1])), clips)
    os.replace(partial, target)
    if progress is not None:
        progress(1.0)
    return RenderResult("completed", target, done, graph.sample_rate, elapsed,
                        (_floor(peaks[0]), _floor(peaks[1])), clips)


def segment_frames(graph: Blocks, segment: tuple[float, float] | None) -> tuple[int, int]:
    """The first and end frame of ``segment`` (seconds) of ``graph``'s task, checked."""
    if segment is None:
        return 0, graph.total_frames
    start_s, end_s = segment
    if not 0.0 <= start_s < end_s:
        raise ValueError(f"segment must satisfy 0 <= start < end, got {segment}")
    start = round(start_s * graph.sample_rate)
    end = min(round(end_s * graph.sample_rate), graph.total_frames)
    if start >= end:
        raise ValueError(f"segment {segment} starts after the task ends "
                         f"({graph.duration_s:.3f} s)")
    return start, end


def _floor(db: float) -> float:
    return max(db, FLOOR_DB)
