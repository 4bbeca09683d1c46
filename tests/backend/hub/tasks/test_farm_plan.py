"""The farm plan: which part renders which chunks (pure)."""

from __future__ import annotations

import pytest

from backend.hub.tasks.farm_plan import ENGINE, Candidate, Part, PlanError, plan, taker

RUNNERS = [Candidate("r1", True), Candidate("r2", True), Candidate("r3", True),
           Candidate("r4", True)]


def test_chunks_are_dealt_round_robin_with_the_engine_last() -> None:
    result = plan(4, set(), RUNNERS, 2)
    assert result.parts == (Part("r1", (0, 3)), Part("r2", (1,)), Part(ENGINE, (2,)))
    assert result.runners == ["r1", "r2"] and dict(result.skipped) == {}
    assert result.part_of(3).name == "r1"


def test_chunks_through_a_driver_stay_with_the_engine() -> None:
    result = plan(4, {0, 2}, RUNNERS, 4)
    assert result.parts == (Part("r1", (1,)), Part("r2", (3,)), Part(ENGINE, (0, 2)))
    assert set(result.skipped) == {"r3", "r4"}
    assert "the task has 4 chunk(s), 2 of them through a driver" in result.skipped["r3"]


def test_runners_by_name_skip_the_unknown_the_down_and_the_busy_with_reasons() -> None:
    candidates = [Candidate("r1", True), Candidate("r2", False),
                  Candidate("r3", True, "needs 4 cpus, 1 free")]
    result = plan(3, set(), candidates, ["r1", "r2", "r3", "ghost"])
    assert result.runners == ["r1"]
    assert dict(result.skipped) == {"r2": "it is down", "r3": "needs 4 cpus, 1 free",
                                    "ghost": "no runner by that name is registered"}


def test_by_count_the_first_able_runners_are_taken() -> None:
    candidates = [Candidate("a", True, "busy"), Candidate("b", True), Candidate("c", True)]
    assert plan(8, set(), candidates, 2).runners == ["b", "c"]


@pytest.mark.parametrize(("chunks", "engine_only", "candidates", "runners", "message"), [
    (3, set(), RUNNERS, 0, "at least 1"),
    (3, set(), RUNNERS, [], "lists no runner"),
    (0, set(), RUNNERS, 1, "no tracks"),
    (1, {0}, RUNNERS, 1, "no chunk left"),
    (3, set(), [Candidate("r1", False)], 1, "r1: it is down"),
    (3, set(), [], 1, "no runner is registered"),
])
def test_a_farm_nobody_can_join_is_refused_with_why(
        chunks: int, engine_only: set[int], candidates: list[Candidate],
        runners: int | list[str], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan(chunks, engine_only, candidates, runners)


def test_a_lost_runner_s_chunks_go_to_a_spare_else_to_the_engine() -> None:
    assert taker("r1", busy=["r1", "r2"], spare=["r1", "r2", "r3"]) == "r3"
    assert taker("r2", busy=["r1", "r2"], spare=["r1", "r2"]) == ENGINE
    assert taker("r2", busy=["r1"]) == ENGINE
    with pytest.raises(PlanError, match="not reassigned"):
        taker(ENGINE, busy=[])


def test_a_task_of_one_chunk_on_one_runner_leaves_the_engine_out() -> None:
    assert plan(1, set(), RUNNERS, 1).parts == (Part("r1", (0,)),)
    with pytest.raises(PlanError, match="1 of them through a driver"):
        plan(1, {0}, RUNNERS, 1)
