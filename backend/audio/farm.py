"""One render split into parts: each part renders whole chunks, one process sums them.

The summation tree (``graph.py``: tracks in groups, groups in chunks, chunks in order) is
the same for a render in one process and for a render split over machines, so the split is
bit-identical: a part computes the partial bus of each chunk it owns exactly as the
engine's own render would, and :func:`assemble` sums every chunk's partial in chunk order
exactly as :meth:`Graph.next_block` does. A part never sums across chunks.

A part's output is one file per chunk, ``chunk-<index>.f64``: the chunk's interleaved
stereo partial bus as little-endian float64, nothing else, for the frames of the render
(or of its segment). That is 768,000 bytes per second of audio at 48 kHz, per chunk: what
a part sends back is bounded by the chunks it owns, whatever their track count.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from backend.audio.blocks import next_frames
from backend.audio.graph import Graph
from backend.audio.meters import Meter, MeterReading
from backend.audio.render import RenderResult, render, segment_frames
from backend.audio.wavfile import RenderFormat

#: Bytes per frame of a chunk's stream (stereo float64).
FRAME_BYTES = 16


#: A chunk's stream inside a larger file: its path, byte offset and byte length.
Slice = tuple[Path, int, int]


def chunk_file(directory: Path, chunk: int) -> Path:
    return directory / f"chunk-{chunk}.f64"


@dataclass(frozen=True)
class PartResult:
    """What a part rendered: its chunks' files (None when cancelled), frames, wall time."""

    status: str  # "completed" or "cancelled"
    files: dict[int, Path] | None
    frames: int
    elapsed_s: float


def render_part(graph: Graph, chunks: Sequence[int], directory: Path,
                progress: Callable[[float], None] | None = None,
                cancel: threading.Event | None = None,
                segment: tuple[float, float] | None = None) -> PartResult:
    """Render ``chunks`` of ``graph``'s task into ``directory`` (one file per chunk).

    Files are written hidden (``.chunk-<i>.f64.partial``) and renamed when complete; a
    cancel or an error removes them, as :func:`~backend.audio.render.render` does for a
    WAV."""
    owned = sorted(set(chunks))
    graph.take_chunks(owned)
    start, end = segment_frames(graph, segment)
    graph.seek(start)
    graph.read_ahead(end)  # chains through a driver start their round trips early
    total = end - start
    directory.mkdir(parents=True, exist_ok=True)
    # Hidden until whole, as a render's WAV is: a runner uploads only visible files.
    partials = {c: directory / f".{chunk_file(directory, c).name}.partial" for c in owned}
    began = time.perf_counter()
    done = 0
    reported = 0.0
    handles: list[BinaryIO] = []
    try:
        handles = [open(partials[c], "wb") for c in owned]  # closed below
        while done < total:
            if cancel is not None and cancel.is_set():
                break
            sums = graph.next_chunks(owned, total - done)
            if sums is None:
                break
            for row, handle in enumerate(handles):
                handle.write(sums[row].astype("<f8", copy=False).data)  # no copy on LE
            done += sums.shape[1] // 2
            if progress is not None and done / total - reported >= 0.005:
                reported = done / total
                progress(reported)
    except BaseException:
        _close_and_remove(handles, partials.values())
        raise
    for handle in handles:
        handle.close()
    elapsed = time.perf_counter() - began
    if done < total:
        _close_and_remove([], partials.values())
        return PartResult("cancelled", None, done, elapsed)
    files = {c: chunk_file(directory, c) for c in owned}
    for c in owned:
        os.replace(partials[c], files[c])
    if progress is not None:
        progress(1.0)
    return PartResult("completed", files, done, elapsed)


class ChunkStreams:
    """Every chunk's partial, read back from the parts' files, as a graph's bus blocks.

    What :func:`~backend.audio.render.render` needs of a graph, so that the assembly writes
    its WAV (partial file, cancel, progress, peaks) with the very code a one-process render
    uses; the bus is :meth:`Graph.sum_chunks` of the blocks read, in chunk order."""

    def __init__(self, files: Sequence[Path | Slice], sample_rate: int,
                 block_frames: int) -> None:
        if not files:
            raise ValueError("an assembly needs at least one chunk file")
        slices = [(f, 0, f.stat().st_size) if isinstance(f, Path) else f for f in files]
        sizes = {length for _, _, length in slices}
        if len(sizes) != 1 or next(iter(sizes)) % FRAME_BYTES:
            raise ValueError("the chunk streams differ in length or are cut mid-frame: "
                             + ", ".join(f"{p.name}@{o} {n} B" for p, o, n in slices))
        self.sample_rate = sample_rate
        self.block_size = block_frames
        self.total_frames = next(iter(sizes)) // FRAME_BYTES
        self.position_frames = 0
        self._starts = [offset for _, offset, _ in slices]
        self._handles = [open(path, "rb") for path, _, _ in slices]  # closed by close()
        self._meter = Meter(sample_rate)
        self._block = np.empty((len(files), 2 * block_frames))

    @property
    def duration_s(self) -> float:
        return self.total_frames / self.sample_rate

    def seek(self, frame: int) -> None:
        for handle, start in zip(self._handles, self._starts, strict=True):
            handle.seek(start + frame * FRAME_BYTES)
        self.position_frames = frame
        self._meter.reset()

    def read_ahead(self, until_frame: int) -> None:
        """Nothing to start early: the files are read in order."""

    def next_block(self, max_frames: int | None = None) -> np.ndarray | None:
        n = next_frames(self.block_size, self.position_frames, self.total_frames, max_frames)
        if n <= 0:
            return None
        block = self._block[:, :2 * n]
        for row, handle in enumerate(self._handles):
            if handle.readinto(memoryview(block[row]).cast("B")) != 2 * n * 8:
                raise OSError(f"{handle.name} ended early, at frame {self.position_frames}")
        bus = Graph.sum_chunks(block).reshape(n, 2)
        self._meter.update(bus)
        self.position_frames += n
        return bus

    def meters(self) -> MeterReading:
        return self._meter.reading()

    def close(self) -> None:
        for handle in self._handles:
            handle.close()


def concatenated(path: Path, count: int) -> list[Slice]:
    """The ``count`` chunk streams of a file that holds them back to back, in chunk order
    (what the engine sends for its part: one upload, checked as one)."""
    size = path.stat().st_size
    if count < 1 or size % (count * FRAME_BYTES):
        raise ValueError(f"{path.name} ({size} B) does not hold {count} whole chunk streams")
    length = size // count
    return [(path, i * length, length) for i in range(count)]


def assemble(files: Sequence[Path | Slice], target: Path, sample_rate: int,
             block_frames: int, fmt: RenderFormat = "wav24",
             progress: Callable[[float], None] | None = None,
             cancel: threading.Event | None = None) -> RenderResult:
    """Sum the chunk streams (``files`` in chunk order, every chunk of the task; a whole
    file each, or a :data:`Slice` of one) into a WAV at ``target``: bit-identical to the
    one-process render of the same frames."""
    streams = ChunkStreams(files, sample_rate, block_frames)
    try:
        return render(streams, target, fmt, progress, cancel)
    finally:
        streams.close()


def _close_and_remove(handles: Sequence[BinaryIO], paths: Iterable[Path]) -> None:
    for handle in handles:
        with contextlib.suppress(OSError):
            handle.close()
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
