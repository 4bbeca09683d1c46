"""The lock state machine, fed events by hand: no worker, no socket, no clock."""

from __future__ import annotations

from typing import Any

from backend.node.locks import LockBook, Verdict


def opened(lid: str = "lk_1", **extra: Any) -> LockBook:
    book = LockBook()
    book.apply("lock", {"lid": lid, "prompt": "name?", "schema": {"type": "object"},
                        "opened_at": 100.0, "no_candidate_timeout": 30,
                        "release_timeout": 5, **extra}, 100.0)
    return book


def test_a_lock_opens_with_its_demand_and_deadline() -> None:
    book = opened()
    demand = book.locks["lk_1"].demand()
    assert (demand["prompt"], demand["status"], demand["deadline"]) == ("name?", "open", 130.0)
    assert book.admit("lk_1").ok
    assert book.admit("lk_x").status_code == 404


def test_release_decides_the_candidate_200_and_closes_the_lock_409() -> None:
    book = opened()
    assert book.apply("candidate", {"lid": "lk_1", "cid": "c1", "value": {"n": 1}}, 101) == []
    assert [c.cid for c in book.pending_candidates()] == ["c1"]
    verdicts = book.apply("release", {"lid": "lk_1", "cid": "c1", "value": {"n": 1}}, 102)
    assert verdicts == [Verdict("c1", "lk_1", 200, {"lid": "lk_1", "cid": "c1",
                                                   "released": True, "accepted": {"n": 1}})]
    assert book.admit("lk_1").status_code == 409
    assert "already released" in book.admit("lk_1").detail
    assert book.pending_candidates() == []


def test_deny_keeps_the_lock_open_with_the_flows_reason() -> None:
    book = opened()
    book.apply("candidate", {"lid": "lk_1", "cid": "c1", "value": {}}, 101)
    [verdict] = book.apply("deny", {"lid": "lk_1", "cid": "c1", "reason": "too loud"}, 102)
    assert (verdict.status_code, verdict.body["reason"]) == (422, "too loud")
    assert book.admit("lk_1").ok
    assert book.locks["lk_1"].demand()["denied"] == [{"cid": "c1", "reason": "too loud"}]
    assert book.verdict_of("lk_1", "c1") == verdict


def test_other_pending_candidates_are_superseded_when_one_is_released() -> None:
    book = opened()
    for cid in ("c1", "c2"):
        book.apply("candidate", {"lid": "lk_1", "cid": cid, "value": {}}, 101)
    verdicts = book.apply("release", {"lid": "lk_1", "cid": "c2", "value": {}}, 102)
    assert [(v.cid, v.status_code) for v in verdicts] == [("c2", 200), ("c1", 409)]


def test_expiry_and_the_runs_end_close_the_lock_and_decide_pending_candidates() -> None:
    book = opened()
    book.apply("candidate", {"lid": "lk_1", "cid": "c1", "value": {}}, 101)
    [v] = book.apply("expire", {"lid": "lk_1", "reason": "nobody answered"}, 130)
    assert v.status_code == 409 and "expired" in v.body["detail"]
    assert "nobody answered" in book.admit("lk_1").detail

    other = opened("lk_2")
    other.apply("candidate", {"lid": "lk_2", "cid": "c9", "value": {}}, 101)
    [v] = other.apply("final", {"state": "cancelled"}, 110)
    assert v.status_code == 409 and "cancelled" in v.body["detail"]
    assert other.locks["lk_2"].status == "closed"


def test_a_candidate_for_a_lock_that_already_ended_is_decided_at_once() -> None:
    book = opened()
    book.apply("release", {"lid": "lk_1", "cid": None, "value": {"x": 1}}, 101)
    [v] = book.apply("candidate", {"lid": "lk_1", "cid": "late", "value": {}}, 102)
    assert v.status_code == 409


def test_verdicts_of_unknown_or_duplicate_answers_are_ignored() -> None:
    book = opened()
    assert book.apply("release", {"lid": "nope", "cid": "c1"}, 101) == []
    assert book.apply("deny", {"lid": "lk_1", "cid": "unknown", "reason": "x"}, 101) == []
    book.apply("candidate", {"lid": "lk_1", "cid": "c1", "value": {}}, 101)
    book.apply("release", {"lid": "lk_1", "cid": "c1", "value": {}}, 102)
    assert book.apply("deny", {"lid": "lk_1", "cid": "c1", "reason": "late"}, 103) == []
