"""The EQ against the RBJ cookbook's analog prototypes, computed here independently.

The cookbook's biquads are the bilinear transform, prewarped at f0, of analog prototypes.
The digital response at frequency w is therefore the prototype's at
``s = j * tan(w / 2) / tan(w0 / 2)``; the tests evaluate that formula (no coefficient code
from the core) and compare it with what the block processor does to steady sines, fed in
blocks of 777 frames so every filter state crosses many block boundaries.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.audio import ParamError, create_instance
from tests.backend.audio.audio_helpers import amplitude_at, run_blocks, sine

RATE = 48000
FREQS = sorted({round(f) for f in np.geomspace(20, 20000, 20)})


def analog_magnitude_db(kind: str, f: float, f0: float, gain_db: float, q: float,
                        rate: int = RATE) -> float:
    a = 10 ** (gain_db / 40)
    s = 1j * math.tan(math.pi * f / rate) / math.tan(math.pi * f0 / rate)
    if kind == "peaking":
        h = (s**2 + s * (a / q) + 1) / (s**2 + s / (a * q) + 1)
    elif kind == "low_shelf":
        h = a * (s**2 + (math.sqrt(a) / q) * s + a) / (a * s**2 + (math.sqrt(a) / q) * s + 1)
    else:
        h = a * (a * s**2 + (math.sqrt(a) / q) * s + 1) / (s**2 + (math.sqrt(a) / q) * s + a)
    return 20 * math.log10(abs(h))


def measured_db(band: dict[str, object], freq: int) -> float:
    eq = create_instance("eq", RATE, {"bands": [band]})
    out = run_blocks(eq, sine(freq, 0.5, 2 * RATE, right=0.25), 777)
    steady = out[RATE:]  # the second second: an integer number of periods of an integer Hz
    left = amplitude_at(steady[:, 0], freq) / 0.5
    right = amplitude_at(steady[:, 1], freq) / 0.125
    assert left == pytest.approx(right, rel=1e-9)  # both channels filtered alike
    return 20 * math.log10(left)


@pytest.mark.parametrize(("kind", "f0", "gain_db", "q"), [
    ("peaking", 1000.0, 6.0, 1.4),
    ("peaking", 150.0, -9.0, 4.0),
    ("low_shelf", 200.0, 6.0, 0.7071),
    ("high_shelf", 6000.0, -8.0, 0.9),
])
def test_response_matches_the_cookbook_prototype_within_0_1_db(
        kind: str, f0: float, gain_db: float, q: float) -> None:
    band = {"type": kind, "freq_hz": f0, "gain_db": gain_db, "q": q}
    errors = {f: measured_db(band, f) - analog_magnitude_db(kind, f, f0, gain_db, q)
              for f in FREQS}
    assert len(FREQS) == 20
    worst = max(errors.items(), key=lambda item: abs(item[1]))
    assert abs(worst[1]) < 0.1, f"{kind} at {worst[0]} Hz off by {worst[1]:.4f} dB"


def test_the_peak_is_where_and_as_high_as_asked() -> None:
    assert measured_db({"type": "peaking", "freq_hz": 1000, "gain_db": 6, "q": 2}, 1000) == \
        pytest.approx(6.0, abs=0.01)
    shelf = {"type": "low_shelf", "freq_hz": 100, "gain_db": -6, "q": 0.7071}
    assert measured_db(shelf, 20) == pytest.approx(-6.0, abs=0.3)
    assert measured_db(shelf, 10000) == pytest.approx(0.0, abs=0.01)


def test_bands_cascade() -> None:
    bands = [{"type": "peaking", "freq_hz": 1000, "gain_db": 6, "q": 1},
             {"type": "high_shelf", "freq_hz": 8000, "gain_db": -6, "q": 0.7071}]
    eq = create_instance("eq", RATE, {"bands": bands})
    out = run_blocks(eq, sine(1000, 0.5, 2 * RATE), 777)
    expected = analog_magnitude_db("peaking", 1000, 1000, 6, 1) + \
        analog_magnitude_db("high_shelf", 1000, 8000, -6, 0.7071)
    got = 20 * math.log10(amplitude_at(out[RATE:, 0], 1000) / 0.5)
    assert got == pytest.approx(expected, abs=0.01)


def test_sweeping_a_band_while_playing_does_not_click() -> None:
    eq = create_instance("eq", RATE, {"bands": [{"freq_hz": 1000, "gain_db": -12, "q": 1}]})
    signal = sine(1000, 0.25, 3 * RATE)
    out = []
    for k, i in enumerate(range(0, signal.shape[0], 777)):
        gain = -12 + 24 * (k % 20) / 19  # a sawtooth sweep -12..+12 dB, jumping back down
        eq.set_params({"bands": [{"freq_hz": 1000 + 50 * (k % 7), "gain_db": gain, "q": 1}]})
        out.append(eq.process(signal[i:i + 777]))
    y = np.concatenate(out)[:, 0]
    assert np.all(np.isfinite(y))
    # the steepest a +12 dB, 1 kHz sine of amplitude 0.25 can move in one sample, with margin
    slope = 0.25 * 10 ** (12 / 20) * 2 * math.pi * 1000 / RATE
    assert np.max(np.abs(np.diff(y))) < 1.5 * slope
    assert np.max(np.abs(y)) < 0.25 * 10 ** (12 / 20) * 1.5


def test_reset_forgets_the_state_but_not_the_bands() -> None:
    eq = create_instance("eq", RATE, {"bands": [{"freq_hz": 500, "gain_db": 6, "q": 1}]})
    first = eq.process(sine(500, 0.5, 2000))
    eq.reset()
    again = eq.process(sine(500, 0.5, 2000))
    assert np.array_equal(first, again)
    assert eq.params["bands"][0]["gain_db"] == 6.0


def test_bad_bands_are_refused_with_the_field_named() -> None:
    eq = create_instance("eq", RATE)
    with pytest.raises(ParamError, match=r"bands\.0\.freq_hz"):
        eq.set_params({"bands": [{"freq_hz": 30000}]})
    with pytest.raises(ParamError, match=r"bands\.0\.type"):
        eq.set_params({"bands": [{"type": "notch"}]})
    with pytest.raises(ParamError, match=r"unknown parameter 'bands\.0\.gain'"):
        eq.set_params({"bands": [{"gain": 3}]})
    assert eq.params == {"bands": []}  # a refused update changes nothing


def test_the_fast_filter_path_gives_the_bits_of_scipys_lfilter() -> None:
    from scipy.signal import lfilter

    from backend.audio.scipy_signal import lfilter_state

    rng = np.random.default_rng(11)
    b, a = np.array([1.02, -1.9, 0.91]), np.array([1.0, -1.89, 0.9])
    zi, ours = np.zeros((2, 2)), np.zeros((2, 2))
    for frames in (8192, 777, 1, 4096):  # state carried across uneven blocks
        block = rng.uniform(-1, 1, (frames, 2))
        want, zi = lfilter(b, a, block, axis=0, zi=zi)
        got, ours = lfilter_state(b, a, block, 0, ours)
        assert np.array_equal(got, want) and np.array_equal(ours, zi)
    single = rng.uniform(-1, 1, (64, 2)).astype(np.float32)  # other dtypes: the public path
    got, _ = lfilter_state(b, a, single, 0, np.zeros((2, 2)))
    np.testing.assert_allclose(got, lfilter(b, a, single, axis=0, zi=np.zeros((2, 2)))[0])
