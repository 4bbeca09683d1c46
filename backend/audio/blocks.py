"""The block format every stage exchanges, and the few operations that must respect it.

A block is a ``(frames, 2)`` C-contiguous ``float64`` array: rows are frames, columns are
left and right. Instances accept float32 too and always return float64; a block may be of
any length (the last one of a task is usually short; tests use odd sizes like 777).

NumPy is slow on this shape in one specific way, measured on the 2-core reference machine:
broadcasting a per-channel ``(2,)`` or per-frame ``(frames, 1)`` factor makes the innermost
loop two elements long, about ten times slower than an elementwise product of equal shapes
(4,096 frames: 30 us against 2.6 us), and per-channel reductions over axis 0 are worse
still. The helpers below keep every hot operation elementwise over the flat buffer or on a
single strided column.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from backend.audio.errors import BlockError

FloatBlock = npt.NDArray[np.float64]
"""A ``(frames, 2)`` float64 block (or, for helpers that say so, a 1-D float64 array)."""


def as_block(block: npt.NDArray[Any]) -> FloatBlock:
    """The block as C-contiguous float64 ``(frames, 2)``, copied only when it has to be."""
    if not isinstance(block, np.ndarray):
        raise BlockError(f"a block must be a numpy array, got {type(block).__name__}")
    if block.ndim != 2 or block.shape[1] != 2:
        raise BlockError(f"a block must have shape (frames, 2), got {block.shape}")
    if block.dtype.kind != "f":
        raise BlockError(f"a block must be float32 or float64, got {block.dtype}")
    return np.ascontiguousarray(block, dtype=np.float64)


def next_frames(block_size: int, position: int, total: int, most: int | None) -> int:
    """How many frames the next block of a stream holds: a block, fewer at the end or
    when the caller asks for at most ``most``; 0 once the stream is done."""
    n = min(block_size, total - position)
    return n if most is None else min(n, most)


def tiled(left: float, right: float, frames: int) -> FloatBlock:
    """A ``(frames, 2)`` block whose columns are the constants ``left`` and ``right``."""
    out = np.empty((frames, 2))
    out[:, 0] = left
    out[:, 1] = right
    return out


def scale_frames(block: FloatBlock, gains: npt.NDArray[np.float64]) -> FloatBlock:
    """A new block: each frame of ``block`` multiplied by its entry of ``gains``."""
    flat = block.reshape(-1) * np.repeat(gains, 2)
    return flat.reshape(block.shape)


def to_stereo(mono: npt.NDArray[np.float64]) -> FloatBlock:
    """A mono signal ``(frames,)`` copied to both channels of a new block."""
    return np.repeat(mono, 2).reshape(-1, 2)


def channel_peaks(block: FloatBlock) -> tuple[float, float]:
    """Largest absolute sample of each channel (0.0 for an empty block)."""
    if block.shape[0] == 0:
        return 0.0, 0.0
    left, right = block[:, 0], block[:, 1]
    return (max(float(left.max()), -float(left.min())),
            max(float(right.max()), -float(right.min())))


def channel_sumsq(block: FloatBlock) -> tuple[float, float]:
    """Sum of squares of each channel."""
    left, right = block[:, 0], block[:, 1]  # einsum, not np.dot: no BLAS threads
    return float(np.einsum("i,i->", left, left)), float(np.einsum("i,i->", right, right))


def channel_overs(block: FloatBlock, limit: float = 1.0) -> tuple[int, int]:
    """How many samples of each channel are beyond +/-``limit`` (over full scale)."""
    left, right = block[:, 0], block[:, 1]
    return (int(np.count_nonzero(np.abs(left) > limit)),
            int(np.count_nonzero(np.abs(right) > limit)))
