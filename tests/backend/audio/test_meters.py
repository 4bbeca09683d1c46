"""Bus meters: peak and RMS in dBFS, hold then fall, clip counts, silence as a number."""

from __future__ import annotations

import numpy as np
import pytest

from backend.audio import Meter
from tests.backend.audio.audio_helpers import sine


def feed(meter: Meter, signal: np.ndarray, block: int = 1024) -> None:
    for i in range(0, signal.shape[0], block):
        meter.update(signal[i:i + block])


def test_a_minus_6_dbfs_sine_reads_peak_minus_6_02_and_rms_minus_9_03() -> None:
    meter = Meter(48000)
    feed(meter, sine(1000, 0.5, 48000))
    reading = meter.reading()
    for ch in (0, 1):
        assert reading.peak_dbfs[ch] == pytest.approx(-6.0206, abs=0.01)
        assert reading.rms_dbfs[ch] == pytest.approx(-9.0309, abs=0.01)
        assert reading.peak_hold_dbfs[ch] == pytest.approx(-6.0206, abs=0.01)
    assert reading.clips == (0, 0)


def test_channels_are_metered_separately() -> None:
    meter = Meter(48000)
    feed(meter, sine(1000, 1.0, 24000, right=0.1))
    peak_l, peak_r = meter.reading().peak_dbfs
    assert peak_l == pytest.approx(0.0, abs=0.01)
    assert peak_r == pytest.approx(-20.0, abs=0.01)


def test_peak_hold_holds_then_falls_at_the_set_rate() -> None:
    meter = Meter(48000, hold_s=0.5, fall_db_per_s=20.0)
    feed(meter, sine(1000, 1.0, 4800))  # 0 dBFS for 0.1 s
    feed(meter, np.zeros((96000, 2)))
    # 2 s of silence: held for 0.5 s, then 1.5 s of fall at 20 dB/s = -30 dB (within a block)
    hold = meter.reading().peak_hold_dbfs[0]
    assert hold == pytest.approx(-30.0, abs=0.5)
    assert meter.reading().peak_dbfs[0] == -120.0  # silence reads as the floor, not -inf


def test_samples_over_full_scale_are_counted_per_channel() -> None:
    meter = Meter(48000)
    block = np.zeros((1000, 2))
    block[10, 0] = 1.5
    block[20:23, 1] = -1.01
    block[30, 1] = 1.0  # exactly full scale is not an over
    meter.update(block)
    meter.update(block)
    assert meter.reading().clips == (2, 6)
    meter.reset()
    assert meter.reading().clips == (0, 0)


def test_reading_is_plain_json() -> None:
    meter = Meter(48000)
    meter.update(sine(1000, 0.5, 1024))
    as_dict = meter.reading().as_dict()
    assert set(as_dict) == {"peak_dbfs", "rms_dbfs", "peak_hold_dbfs", "clips"}
    assert isinstance(as_dict["peak_dbfs"], list) and len(as_dict["clips"]) == 2
