"""The loudness meter against EBU Tech 3341 (minimum requirements of an EBU-mode meter)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.node.loudness import block_powers, integrated_loudness, k_weighting

RATE = 48000


def sine(level_dbfs: float, seconds: float, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    mono = 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * freq * t)
    return np.stack([mono, mono], axis=1)


def sequence(*parts: tuple[float, float]) -> np.ndarray:
    return np.concatenate([sine(level, seconds) for level, seconds in parts])


def test_k_weighting_at_48k_matches_the_standard_table() -> None:
    sos = k_weighting(48000)
    assert sos[0, :3] == pytest.approx([1.53512485958697, -2.69169618940638,
                                        1.19839281085285], abs=1e-9)
    assert sos[0, 4:] == pytest.approx([-1.69065929318241, 0.73248077421585], abs=1e-9)
    assert sos[1, 4:] == pytest.approx([-1.99004745483398, 0.99007225036621], abs=1e-9)


@pytest.mark.parametrize(
    ("case", "signal", "expected"),
    [
        ("3341-1: 1 kHz stereo sine at -23 dBFS, 20 s", sequence((-23, 20)), -23.0),
        ("3341-2: 1 kHz stereo sine at -33 dBFS, 20 s", sequence((-33, 20)), -33.0),
        ("3341-3: -36 / -23 / -36 dBFS (relative gate)",
         sequence((-36, 10), (-23, 60), (-36, 10)), -23.0),
        ("3341-4: -72 / -36 / -23 / -36 / -72 dBFS (both gates)",
         sequence((-72, 20), (-36, 10), (-23, 60), (-36, 10), (-72, 20)), -23.0),
        ("3341-5: -26 / -20 / -26 dBFS", sequence((-26, 20), (-20, 20.1), (-26, 20)), -23.0),
    ],
)
def test_ebu_tech_3341_cases(case: str, signal: np.ndarray, expected: float) -> None:
    assert integrated_loudness(signal, RATE) == pytest.approx(expected, abs=0.1), case


def test_silence_and_short_input_read_minus_infinity() -> None:
    assert integrated_loudness(np.zeros((RATE * 2, 2)), RATE) == float("-inf")
    assert integrated_loudness(np.ones((100, 2)), RATE) == float("-inf")


def test_blocks_are_400_ms_with_a_100_ms_step() -> None:
    assert block_powers(sine(-23, 1.0), RATE).shape == (7, 2)


def test_other_sample_rates_read_the_same() -> None:
    t = np.arange(20 * 44100) / 44100
    mono = 10 ** (-23 / 20) * np.sin(2 * np.pi * 1000 * t)
    assert integrated_loudness(np.stack([mono, mono], 1), 44100) == pytest.approx(-23, abs=0.1)
