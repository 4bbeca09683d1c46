import numpy as np
import pytest

from backend.errors import ProtocolViolation
from backend.protocol import frames


def test_round_trip_is_exact_for_float64_audio() -> None:
    block = np.random.default_rng(1).standard_normal((777, 2))
    header, payload = frames.unpack(frames.pack({"k": "insert", "seq": 3},
                                                frames.block_bytes(block)))
    assert header == {"k": "insert", "seq": 3}
    back = frames.block_from(payload, "float64", 2)
    assert back.shape == (777, 2) and np.array_equal(back, block)


@pytest.mark.parametrize(
    "frame",
    [b"", b"\x00\x00", b"\x00\x00\x10\x00{}", b"\x00\x00\x00\x02[]", b"\x00\x00\x00\x03abc",
     b"\x00\x00\x00\x02{}",
     # a header nested 4,000 deep raised RecursionError, which no reader caught (found by
     # tests/fuzz: a hub connection died with 1011, an engine's link reader thread died)
     b"\x00\x00\x0f\xa0" + b"[" * 4000],
)
def test_bad_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        frames.unpack(frame)


def test_payload_must_fit_the_channels() -> None:
    with pytest.raises(ProtocolViolation):
        frames.block_from(b"\x00" * 12, "float32", 2)
