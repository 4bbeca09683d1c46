"""Tokens: random, stored hashed, compared in constant time, single use, expiring."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from backend.errors import AuthError
from backend.hub import tokens
from backend.protocol import closecodes


def test_tokens_are_random_and_prefixed() -> None:
    a, b = tokens.new_token("cre_"), tokens.new_token("cre_")
    assert a != b and a.startswith("cre_") and len(a) > 40


def test_digest_is_not_the_token_and_matches_only_it() -> None:
    token = tokens.new_token("crs_")
    stored = tokens.digest(token)
    assert token not in stored
    assert tokens.matches(token, stored)
    assert not tokens.matches(token + "x", stored)


def record(**kw: object) -> tokens.EnrollmentRecord:
    base = {"token_digest": "d", "kind": "engine", "expires_at": 100.0, "used_at": None}
    base.update(kw)
    return tokens.EnrollmentRecord(**base)  # type: ignore[arg-type]


def test_fresh_token_of_the_right_kind_passes() -> None:
    tokens.check_enrollment(record(), "engine", now=50.0)


@pytest.mark.parametrize(
    ("rec", "kind", "now", "code", "reason"),
    [
        (None, "engine", 0.0, closecodes.AUTH_FAILED, "enrollment token unknown"),
        (record(used_at=10.0), "engine", 50.0, closecodes.AUTH_FAILED, "already used"),
        (record(), "engine", 100.0, closecodes.AUTH_FAILED, "expired"),
        (record(), "driver", 50.0, closecodes.FORBIDDEN, "for a engine, not a driver"),
    ],
)
def test_refusals_say_which_check_failed(
    rec: tokens.EnrollmentRecord | None, kind: str, now: float, code: int, reason: str
) -> None:
    with pytest.raises(AuthError) as info:
        tokens.check_enrollment(rec, kind, now)
    assert info.value.code == code
    assert reason in info.value.reason


def test_used_is_reported_before_expired() -> None:
    with pytest.raises(AuthError, match="already used"):
        tokens.check_enrollment(record(used_at=1.0), "engine", now=500.0)


def test_secret_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secret"
    tokens.write_secret_file(path, "s3cret")
    assert path.read_text() == "s3cret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_operator_token_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    first = tokens.load_or_create_operator_token(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert tokens.load_or_create_operator_token(path) == first
