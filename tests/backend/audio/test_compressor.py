"""The compressor: static curve, attack and release as time constants, stereo link, reports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.audio import create_instance
from tests.backend.audio.audio_helpers import peak_db, run_blocks, sine

RATE = 48000
THRESHOLD, RATIO = -20.0, 4.0


def expected_out_db(level: float, makeup: float = 0.0) -> float:
    if level <= THRESHOLD:
        return level + makeup
    return THRESHOLD + (level - THRESHOLD) / RATIO + makeup


@pytest.mark.parametrize("level", [-40.0, -30.0, -22.0, -18.0, -10.0, -6.0, 0.0])
def test_static_curve_with_steady_tones_within_0_5_db(level: float) -> None:
    comp = create_instance("compressor", RATE, {
        "threshold_db": THRESHOLD, "ratio": RATIO, "attack_ms": 5.0, "release_ms": 200.0})
    out = run_blocks(comp, sine(1000, 10 ** (level / 20), int(1.5 * RATE)), 1024)
    steady = out[-RATE // 4:]
    assert peak_db(steady[:, 0]) == pytest.approx(expected_out_db(level), abs=0.5)
    wanted = max(0.0, (level - THRESHOLD) * (1 - 1 / RATIO))
    assert comp.report()["gain_reduction_db"] == pytest.approx(wanted, abs=0.5)


def test_makeup_gain_lifts_the_output() -> None:
    comp = create_instance("compressor", RATE, {
        "threshold_db": THRESHOLD, "ratio": RATIO, "makeup_db": 6.0, "release_ms": 200.0})
    out = run_blocks(comp, sine(1000, 10 ** (-4 / 20), RATE), 1024)
    assert peak_db(out[-RATE // 4:, 0]) == pytest.approx(expected_out_db(-4.0, 6.0), abs=0.5)


def test_soft_knee_follows_the_quadratic_around_the_threshold() -> None:
    comp = create_instance("compressor", RATE, {"threshold_db": -20, "ratio": 4, "knee_db": 10})
    curve = comp.gain_reduction(np.array([-30.0, -25.0, -20.0, -15.0, -10.0]))
    slope = 1 - 1 / 4
    assert curve == pytest.approx([0.0, 0.0, slope * 5**2 / 20, slope * 5, slope * 10])


def test_attack_reaches_63_percent_after_one_time_constant() -> None:
    comp = create_instance("compressor", RATE, {
        "threshold_db": -20, "ratio": 4, "attack_ms": 20.0, "release_ms": 100.0})
    level = np.full((RATE, 2), 0.5)  # -6.02 dBFS steady: wanted reduction 10.48 dB
    wanted = (20 * math.log10(0.5) + 20) * 0.75
    reductions = []
    for i in range(0, RATE, 48):  # 1 ms blocks, read the report after each
        comp.process(level[i:i + 48])
        reductions.append(comp.report()["gain_reduction_db"])
    assert reductions[19] / wanted == pytest.approx(1 - math.exp(-1), abs=0.02)  # 20 ms
    assert reductions[-1] == pytest.approx(wanted, rel=1e-6)


def test_release_falls_to_37_percent_after_one_time_constant() -> None:
    comp = create_instance("compressor", RATE, {
        "threshold_db": -20, "ratio": 4, "attack_ms": 0.1, "release_ms": 100.0})
    comp.process(np.full((RATE, 2), 0.5))
    start = comp.report()["gain_reduction_db"]
    comp.process(np.zeros((4800, 2)))  # 100 ms of silence
    assert comp.report()["gain_reduction_db"] / start == pytest.approx(math.exp(-1), abs=0.02)


def test_stereo_link_applies_the_louder_channels_gain_to_both() -> None:
    comp = create_instance("compressor", RATE, {"threshold_db": -20, "ratio": 4})
    out = run_blocks(comp, sine(1000, 1.0, RATE, right=0.01), 1024)
    steady = out[-RATE // 4:]
    reduction = peak_db(steady[:, 0]) - 0.0
    assert peak_db(steady[:, 1]) == pytest.approx(-40.0 + reduction, abs=0.05)


def test_changing_threshold_mid_stream_glides_without_a_click() -> None:
    comp = create_instance("compressor", RATE, {"threshold_db": 0.0, "attack_ms": 10.0})
    signal = sine(1000, 0.5, 2 * RATE)
    first = comp.process(signal[:RATE])
    comp.set_params({"threshold_db": -40.0, "ratio": 10.0})
    second = comp.process(signal[RATE:])
    y = np.concatenate([first, second])[:, 0]
    max_step = 0.5 * 2 * math.pi * 1000 / RATE
    assert np.max(np.abs(np.diff(y))) <= max_step * 1.01
    assert comp.report()["gain_reduction_db"] > 20.0  # the new settings did take over


def test_reports_current_and_block_maximum_reduction() -> None:
    comp = create_instance("compressor", RATE)
    assert comp.report() == {"gain_reduction_db": 0.0, "max_gain_reduction_db": 0.0}
    comp.process(np.full((4800, 2), 1.0))
    report = comp.report()
    assert report["max_gain_reduction_db"] >= report["gain_reduction_db"] > 0.0
    comp.reset()
    assert comp.report()["gain_reduction_db"] == 0.0
