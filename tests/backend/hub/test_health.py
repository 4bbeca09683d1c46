"""The health state machine, driven by a fake clock: every transition the contract names."""

from __future__ import annotations

import pytest

from backend.hub.health import (
    Answered,
    Health,
    HealthCheck,
    HealthSettings,
    SendPing,
    StateChanged,
)

S = HealthSettings(interval_s=1.0, timeout_s=0.5, misses=3)


def pings(actions: list[object]) -> list[int]:
    return [a.seq for a in actions if isinstance(a, SendPing)]


def changes(actions: list[object]) -> list[tuple[Health, Health]]:
    return [(a.old, a.new) for a in actions if isinstance(a, StateChanged)]


def test_registration_starts_half_open_and_pings_at_once() -> None:
    check = HealthCheck(S, now=100.0)
    assert check.state is Health.HALF_OPEN
    assert pings(check.poll(100.0)) == [1]
    assert check.next_deadline() == pytest.approx(100.5)  # the timeout of ping 1


def test_first_answer_moves_half_open_to_up_with_rtt() -> None:
    check = HealthCheck(S, now=0.0)
    check.poll(0.0)
    actions = check.answered(1, 0.004)
    assert Answered(1, pytest.approx(0.004)) in actions  # type: ignore[arg-type]
    assert changes(actions) == [(Health.HALF_OPEN, Health.UP)]
    assert check.state is Health.UP


def test_pings_follow_the_interval() -> None:
    check = HealthCheck(S, now=0.0)
    sent = []
    t = 0.0
    while t <= 3.0:
        actions = check.poll(t)
        sent += pings(actions)
        for seq in pings(actions):
            check.answered(seq, t + 0.01)
        t = round(t + 0.1, 3)
    assert sent == [1, 2, 3, 4]  # at 0, 1, 2, 3


def test_n_misses_in_a_row_move_up_to_down_at_the_last_timeout() -> None:
    check = HealthCheck(S, now=0.0)
    check.poll(0.0)
    check.answered(1, 0.01)
    assert check.state is Health.UP
    # the process hangs from t=0.01: pings at 1, 2, 3 go unanswered
    downs = []
    for step in range(1, 40):
        t = step * 0.1
        for change in changes(check.poll(t)):
            downs.append((t, change))
    assert len(downs) == 1
    t, change = downs[0]
    assert change == (Health.UP, Health.DOWN)
    assert t == pytest.approx(3.5)  # interval x misses + timeout after the hang
    assert check.misses_in_a_row >= 3


def test_fewer_misses_than_n_keep_it_up_and_an_answer_resets_the_count() -> None:
    check = HealthCheck(S, now=0.0)
    check.poll(0.0)
    check.answered(1, 0.01)
    check.poll(1.0)
    check.poll(1.5)  # ping 2 missed
    check.poll(2.0)
    check.poll(2.5)  # ping 3 missed
    assert check.misses_in_a_row == 2 and check.state is Health.UP
    check.poll(3.0)
    check.answered(4, 3.1)
    assert check.misses_in_a_row == 0 and check.state is Health.UP


def test_an_answer_after_down_brings_it_back_up() -> None:
    check = HealthCheck(S, now=0.0)
    for step in range(0, 36):
        check.poll(step * 0.1)
    assert check.state is Health.DOWN  # never answered: half-open -> down
    actions = check.poll(4.0)
    actions += check.answered(pings(actions)[0], 4.05)
    assert changes(actions) == [(Health.DOWN, Health.UP)]


def test_late_answers_change_nothing() -> None:
    check = HealthCheck(S, now=0.0)
    check.poll(0.0)
    check.poll(0.6)  # ping 1 expired
    assert check.answered(1, 0.7) == []
    assert check.state is Health.HALF_OPEN
    assert check.answered(99, 0.7) == []  # never sent


def test_closed_socket_is_down_at_once_and_stops_checks() -> None:
    check = HealthCheck(S, now=0.0)
    check.poll(0.0)
    check.answered(1, 0.01)
    assert changes(check.closed("connection lost")) == [(Health.UP, Health.DOWN)]
    assert check.next_deadline() is None
    assert check.poll(10.0) == []
    assert check.closed("again") == []


def test_half_open_closed_is_down() -> None:
    check = HealthCheck(S, now=0.0)
    assert changes(check.closed("x")) == [(Health.HALF_OPEN, Health.DOWN)]


def test_a_stalled_loop_does_not_burst_pings() -> None:
    check = HealthCheck(S, now=0.0)
    check.poll(0.0)
    check.answered(1, 0.01)
    assert pings(check.poll(10.0)) == [2]  # one ping, not ten
    assert check.next_deadline() == pytest.approx(10.5)


@pytest.mark.parametrize("bad", [dict(interval_s=0), dict(timeout_s=-1), dict(misses=0)])
def test_settings_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HealthSettings(**bad)  # type: ignore[arg-type]


def test_hang_detection_bound() -> None:
    assert HealthSettings().hang_detection_s == pytest.approx(3.5)
