"""The run state as a fold of events: pure, replayable, the one source of truth."""

from __future__ import annotations

from typing import Any

from backend.node.fold import RunEvent, RunState, fold


def events(*items: tuple[str, dict[str, Any]]) -> list[RunEvent]:
    return [RunEvent(i, 1000.0 + i, t, d) for i, (t, d) in enumerate(items, start=1)]


LOCK = {"lid": "lk_1", "prompt": "p", "schema": {}, "opened_at": 1000.0,
        "no_candidate_timeout": 60, "release_timeout": 5}


def test_pending_running_locked_running_done() -> None:
    stream = events(
        ("status", {"state": "pending", "flow": "hello", "inputs": None}),
        ("status", {"state": "running", "pid": 42}),
        ("lock", LOCK),
        ("candidate", {"lid": "lk_1", "cid": "c1", "value": {"name": "x"}}),
        ("release", {"lid": "lk_1", "cid": "c1", "value": {"name": "x"}}),
        ("progress", {"value": 0.5, "message": "half"}),
        ("result", {"value": "Hello, x!"}),
        ("final", {"state": "done"}),
    )
    seen = []
    state = RunState("fl_1")
    for event in stream:
        state.apply(event)
        seen.append(state.state)
    assert seen == ["pending", "running", "locked", "locked", "running", "running",
                    "running", "done"]
    view = state.view()
    assert (view["flow"], view["result"], view["pid"], view["progress"]) == \
        ("hello", "Hello, x!", 42, 0.5)
    assert view["locks"] == [] and view["offset"] == 8


def test_replaying_the_same_events_is_a_no_op_and_fold_equals_incremental() -> None:
    stream = events(("status", {"state": "pending", "flow": "f"}), ("lock", LOCK))
    state = fold("fl_1", stream)
    state.apply(stream[1])  # a duplicate delivery
    assert state.view() == fold("fl_1", stream).view()
    assert [lock["lid"] for lock in state.view()["locks"]] == ["lk_1"]


def test_nothing_after_final_changes_the_state() -> None:
    state = fold("fl_1", events(
        ("status", {"state": "pending", "flow": "f"}),
        ("final", {"state": "cancelled", "reason": "DELETE"}),
        ("result", {"value": 1}),
    ))
    assert (state.state, state.result, state.reason) == ("cancelled", None, "DELETE")


def test_errors_and_interruptions_keep_their_reason() -> None:
    crashed = fold("fl_1", events(
        ("error", {"message": "worker exited with code 3", "exit_code": 3, "stderr": "x"}),
        ("final", {"state": "error", "reason": "worker exited with code 3"}),
    ))
    assert crashed.state == "error" and crashed.error == {
        "message": "worker exited with code 3", "exit_code": 3, "stderr": "x"}
    gone = fold("fl_2", events(("final", {"state": "interrupted", "reason": "SIGKILL"})))
    assert gone.state == "interrupted" and gone.error == {"message": "SIGKILL"}


def test_a_childs_open_lock_shows_in_the_parent_and_makes_it_locked() -> None:
    child_lock = {"lid": "lk_c", "prompt": "ok?", "schema": {}, "deadline": 1, "fid": "fl_c"}
    state = fold("fl_p", events(
        ("status", {"state": "pending", "flow": "fan-out"}),
        ("status", {"state": "running"}),
        ("child", {"node": "b", "fid": "fl_c", "flow": "hello", "state": "locked",
                   "locks": [child_lock]}),
    ))
    assert state.state == "locked"
    [lock] = state.view()["locks"]
    assert (lock["lid"], lock["node"], lock["fid"]) == ("lk_c", "b", "fl_c")
    assert state.find_child_lock("lk_c") == lock
    assert state.view()["children"][0]["state"] == "locked"
    state.apply(RunEvent(4, 2000, "child", {"node": "b", "fid": "fl_c", "flow": "hello",
                                            "state": "done", "locks": [], "result": "hi"}))
    assert state.state == "running" and state.view()["locks"] == []
    assert state.summary() == {"state": "running", "locks": []}
