"""The pan law (mono, constant power) and the balance (stereo), at the ends and between."""

from __future__ import annotations

import math

import pytest

from backend.audio import balance_gains, pan_gains


def test_hard_left_centre_hard_right_are_exact() -> None:
    assert pan_gains(-1.0) == (1.0, 0.0)
    assert pan_gains(1.0) == (0.0, 1.0)
    left, right = pan_gains(0.0)
    assert left == right == pytest.approx(math.sqrt(0.5), abs=1e-15)
    assert 20 * math.log10(left) == pytest.approx(-3.0103, abs=1e-4)  # -3 dB at the centre


@pytest.mark.parametrize("pan", [-0.9, -0.5, -0.25, 0.1, 0.5, 0.75])
def test_between_it_follows_sin_cos_with_constant_power(pan: float) -> None:
    left, right = pan_gains(pan)
    theta = (pan + 1) * math.pi / 4
    assert left == pytest.approx(math.cos(theta), abs=1e-15)
    assert right == pytest.approx(math.sin(theta), abs=1e-15)
    assert left**2 + right**2 == pytest.approx(1.0, abs=1e-15)


def test_half_left_is_the_mirror_of_half_right() -> None:
    left, right = pan_gains(-0.5)
    assert pan_gains(0.5) == pytest.approx((right, left), abs=1e-15)
    assert left == pytest.approx(math.cos(math.pi / 8))  # 0.924: -0.69 dB on the near side


def test_balance_keeps_a_centred_stereo_source_untouched() -> None:
    assert balance_gains(0.0) == (1.0, 1.0)
    assert balance_gains(1.0) == (0.0, 1.0)
    assert balance_gains(-1.0) == (1.0, 0.0)
    left, right = balance_gains(0.5)
    assert right == 1.0 and left == pytest.approx(math.cos(math.pi / 4))


@pytest.mark.parametrize("bad", [-1.01, 1.5])
def test_pan_outside_the_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="pan"):
        pan_gains(bad)
