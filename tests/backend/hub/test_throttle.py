"""The failed-authentication throttle: counted per address and per credential, refused
only while over the limit, forgotten when the window ends."""

from __future__ import annotations

import pytest

from backend.hub.throttle import MAX_KEYS, FailureThrottle, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_is_per_window_and_says_how_long_to_wait() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=3, window_s=60, clock=clock)
    keys = throttle.keys("10.0.0.9", "crt_guess")
    verdicts = [throttle.failed(keys) for _ in range(3)]
    assert [v.report for v in verdicts] == [True, True, True]
    assert [v.throttled_now for v in verdicts] == [False, False, True]
    clock.now += 20
    assert throttle.retry_after(keys) == 40
    assert not throttle.failed(keys).report  # past the limit: no event per failure
    clock.now += 40
    assert throttle.retry_after(keys) is None  # a new window
    assert throttle.failed(keys).report


def test_an_address_and_a_credential_are_counted_apart() -> None:
    throttle = FailureThrottle(limit=2, window_s=60, clock=Clock())
    for token in ("crt_a", "crt_b"):  # many credentials from one address
        throttle.failed(throttle.keys("10.0.0.9", token))
    assert throttle.retry_after(throttle.keys("10.0.0.9", "crt_c")) is not None
    assert throttle.retry_after(throttle.keys("10.0.0.7", "crt_c")) is None
    for address in ("10.0.0.1", "10.0.0.2"):  # one credential from many addresses
        throttle.failed(throttle.keys(address, "crt_stolen"))
    assert throttle.retry_after(throttle.keys("10.0.0.3", "crt_stolen")) is not None


def test_credentials_are_kept_as_digests_and_memory_is_bounded() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=5, window_s=1, clock=clock)
    keys = throttle.keys("10.0.0.9", "crt_secret_value")
    assert not any("crt_secret_value" in k for k in keys)
    for i in range(MAX_KEYS + 10):
        throttle.failed((f"addr:{i}",))
        if i == MAX_KEYS // 2:
            clock.now += 2  # the first half's windows have ended
    assert len(throttle._windows) <= MAX_KEYS


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        FailureThrottle(limit=0)


def test_failure_counts_until_the_limit_then_says_how_long_to_wait() -> None:
    """The one helper the HTTP routes and the agent channel both call after a refused
    credential (never before checking one: a valid credential always passes)."""
    clock = Clock()
    throttle = FailureThrottle(limit=2, window_s=30, clock=clock)
    keys = throttle.keys("10.0.0.9", "crt_guess")
    first, second = throttle.failure(keys), throttle.failure(keys)
    assert isinstance(first, Verdict) and first.report and not first.throttled_now
    assert isinstance(second, Verdict) and second.throttled_now
    clock.now += 10
    assert throttle.failure(keys) == 20  # refused, and not counted
    clock.now += 20
    assert isinstance(throttle.failure(keys), Verdict)
