"""Output sinks: the null sink keeps time; with no device the fallback says why."""

from __future__ import annotations

import time

import numpy as np

from backend.audio.output import NullSink, open_sink, output_devices


def test_null_sink_paces_against_the_absolute_clock() -> None:
    sink = NullSink(48000)
    block = np.zeros((2400, 2), np.float32)  # 50 ms
    started = time.monotonic()
    for _ in range(8):
        sink.write(block)
    elapsed = time.monotonic() - started
    assert 0.33 <= elapsed < 0.8  # 8 x 50 ms, the first block is "played" on arrival + 50 ms
    assert sink.frames == 8 * 2400


def test_without_a_device_the_sink_is_null_and_says_why() -> None:
    sink = open_sink(48000)
    try:
        if not output_devices():
            assert isinstance(sink, NullSink)
            assert sink.name.startswith("null sink (no ")
        sink.write(np.zeros((480, 2), np.float32))
    finally:
        sink.close()
