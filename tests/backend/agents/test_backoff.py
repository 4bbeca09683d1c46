"""Reconnect schedule: capped exponential ceilings, full jitter, reset on success."""

import random

import pytest

from backend.agents.backoff import Backoff


def test_ceilings_double_from_half_a_second_up_to_the_cap() -> None:
    b = Backoff()
    assert [b.ceiling(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert b.ceiling(10_000) == 30


def test_delays_are_full_jitter_within_the_ceiling() -> None:
    b = Backoff(rng=random.Random(7))
    delays = [b.next_delay() for _ in range(12)]
    for n, d in enumerate(delays):
        assert 0.0 <= d <= b.ceiling(n)
    assert len(set(delays)) == len(delays)  # jittered, not a fixed ladder


def test_jitter_spreads_a_fleet() -> None:
    fleet = [Backoff(rng=random.Random(seed)) for seed in range(200)]
    for b in fleet:
        for _ in range(5):
            b.next_delay()
    fifth = [b.next_delay() for b in fleet]  # attempt 5: ceiling 16 s
    assert min(fifth) < 4 and max(fifth) > 12


def test_reset_starts_over() -> None:
    b = Backoff(rng=random.Random(1))
    for _ in range(6):
        b.next_delay()
    b.reset()
    assert b.attempt == 0
    assert b.next_delay() <= 0.5


def test_custom_schedule() -> None:
    b = Backoff(start_s=1, factor=3, cap_s=10)
    assert [b.ceiling(n) for n in range(4)] == pytest.approx([1, 3, 9, 10])
