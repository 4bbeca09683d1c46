"""Binary frames: audio blocks and file chunks on the agent channel, sans I/O.

Layout: a 4-byte big-endian header length, the header as compact UTF-8 JSON, then the
payload bytes. The header says what the payload is and where it goes, so the hub can relay
a frame by reading the header alone, without touching the audio.

Header kinds (``k``):

- ``audio``: a mixed block from the engine to stream subscribers (``task``, ``seq``,
  ``pos`` in frames, ``rate``, ``ch``); payload float32 interleaved.
- ``insert``: a block the engine sends through a fixed instance on a driver (``task``,
  ``iid``, ``driver``, ``seq``, ``reset`` on a run's first block, ``dtype``, ``ch``).
- ``insert_result``: the processed block coming back (same fields, ``engine``).
- ``file``: a chunk of a finished render (``task``, ``render``, ``offset``, ``size``).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from backend.errors import ProtocolViolation
from backend.protocol import closecodes

_LEN = struct.Struct(">I")
MAX_HEADER_BYTES = 4096


def pack(header: dict[str, Any], payload: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return _LEN.pack(len(head)) + head + payload


def unpack(frame: bytes) -> tuple[dict[str, Any], memoryview]:
    """Split a frame into its header and a zero-copy view of its payload."""
    if len(frame) < _LEN.size:
        raise ProtocolViolation(closecodes.INVALID_MESSAGE, "binary frame shorter than a header")
    (length,) = _LEN.unpack_from(frame)
    if length > MAX_HEADER_BYTES or _LEN.size + length > len(frame):
        raise ProtocolViolation(closecodes.INVALID_MESSAGE, "binary frame header length invalid")
    try:
        header = json.loads(frame[_LEN.size:_LEN.size + length])
    except (ValueError, RecursionError):  # RecursionError: ``[[[[...`` in 4 KiB; it
        # escaped every reader's error handling (a hub connection died with 1011)
        raise ProtocolViolation(
            closecodes.INVALID_MESSAGE, "binary frame header is not JSON"
        ) from None
    if not isinstance(header, dict) or not isinstance(header.get("k"), str):
        raise ProtocolViolation(closecodes.INVALID_MESSAGE, "binary frame header has no kind 'k'")
    return header, memoryview(frame)[_LEN.size + length:]


def block_bytes(block: np.ndarray) -> bytes:
    """A (frames, channels) block as interleaved bytes in its own dtype, exactly."""
    return np.ascontiguousarray(block).tobytes()


def block_from(payload: memoryview | bytes, dtype: str, channels: int) -> np.ndarray:
    data = np.frombuffer(payload, dtype=np.dtype(dtype))
    if channels <= 0 or data.size % channels:
        raise ProtocolViolation(closecodes.INVALID_MESSAGE, "audio payload does not fit channels")
    return data.reshape(-1, channels)
