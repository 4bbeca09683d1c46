"""The saturator's curve: monotonic, bounded, unity for small signals, odd, mixable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.audio import create_instance
from tests.backend.audio.audio_helpers import sine

RATE = 48000


def ramp(lo: float = -8.0, hi: float = 8.0, n: int = 20001) -> np.ndarray:
    x = np.linspace(lo, hi, n)
    return np.stack([x, x], axis=1)


@pytest.mark.parametrize("drive", [0.0, 6.0, 18.0, 36.0])
@pytest.mark.parametrize("mix", [1.0, 0.5, 0.0])
def test_curve_is_monotonic(drive: float, mix: float) -> None:
    sat = create_instance("saturator", RATE, {"drive_db": drive, "mix": mix})
    x = ramp()[:, 0]
    y = sat.process(ramp())[:, 0]
    assert np.all(np.diff(y) >= 0)
    # strictly increasing wherever tanh has not yet rounded to exactly +/-1.0 in float64
    live = np.abs(x[1:]) * 10 ** (drive / 20) < 8
    assert np.all(np.diff(y)[live] > 0)


@pytest.mark.parametrize("drive", [0.0, 6.0, 18.0, 36.0])
def test_fully_wet_output_is_bounded_by_one_over_the_drive(drive: float) -> None:
    sat = create_instance("saturator", RATE, {"drive_db": drive})
    y = sat.process(ramp(-1e6, 1e6))
    bound = 10 ** (-drive / 20)
    assert np.max(np.abs(y)) <= bound * (1 + 1e-12)
    assert np.max(np.abs(y)) <= 1.0


def test_small_signals_pass_at_unity_whatever_the_drive() -> None:
    for drive in (0.0, 12.0, 24.0):
        sat = create_instance("saturator", RATE, {"drive_db": drive})
        quiet = sine(1000, 1e-4, 480)
        assert sat.process(quiet) == pytest.approx(quiet, rel=1e-5, abs=1e-12)


def test_the_curve_is_tanh_of_the_driven_input_scaled_back() -> None:
    sat = create_instance("saturator", RATE, {"drive_db": 6.0})
    g = 10 ** (6 / 20)
    assert sat.process(np.array([[1.0, -0.5]]))[0] == pytest.approx(
        [math.tanh(g) / g, -math.tanh(0.5 * g) / g])


def test_it_is_odd_so_it_adds_no_dc_to_a_symmetric_signal() -> None:
    sat = create_instance("saturator", RATE, {"drive_db": 24.0})
    y = sat.process(sine(1000, 1.0, 4800))
    assert abs(float(y[:, 0].mean())) < 1e-12


def test_a_drive_change_is_ramped() -> None:
    sat = create_instance("saturator", RATE, {"drive_db": 0.0})
    dc = np.full((200, 2), 0.9)
    sat.process(dc)
    sat.set_params({"drive_db": 24.0})
    y = sat.process(dc)[:, 0]
    # unramped, the first sample would drop from tanh(0.9) = 0.716 to 0.063 at once
    assert np.all(np.diff(y) < 0) and np.max(np.abs(np.diff(y))) < 0.03
    assert y[-1] == pytest.approx(math.tanh(0.9 * 10 ** 1.2) / 10 ** 1.2)
