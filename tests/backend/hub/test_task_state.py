"""The task fold and its guards: every transition, and every command in every wrong state."""

from __future__ import annotations

from typing import Any

import pytest

from backend.hub.tasks.state import (
    Conflict,
    RenderState,
    Task,
    TaskState,
    allowed_commands,
    apply,
    require,
)

SPEC: dict[str, Any] = {"instances": {"c1": {"model": "compressor", "params": {"ratio": 2}}}}


def fold(*events: dict[str, Any]) -> Task:
    task = None
    for event in [{"type": "reserved", "task_id": "t_1", "spec": SPEC, "engine": "e",
                   "drivers": {"d1": ["c1"], "d2": []}}, *events]:
        task = apply(task, event)
    assert task is not None
    return task


def ready() -> list[dict[str, Any]]:
    return [{"type": "accepted", "component": c} for c in ("e", "d1", "d2")]


def test_reserved_is_pending_until_every_component_accepts() -> None:
    task = fold({"type": "accepted", "component": "e"}, {"type": "accepted", "component": "d1"})
    assert task.state is TaskState.PENDING and task.waiting == {"d2"}
    assert fold(*ready()).state is TaskState.READY


def test_one_refusal_fails_the_task_with_who_and_why() -> None:
    task = fold({"type": "accepted", "component": "e"},
                {"type": "refused", "component": "d1", "reason": "no instance c1"})
    assert task.state is TaskState.FAILED
    assert task.error == "d1 refused the spec: no instance c1"


def test_play_and_stop() -> None:
    task = fold(*ready(), {"type": "play", "ts": 5.0})
    assert task.state is TaskState.PLAYING and task.play and task.play["state"] == "playing"
    task = apply(task, {"type": "stopped", "ts": 7.0})
    assert task.state is TaskState.READY and task.play and task.play["stopped_at"] == 7.0


def test_render_progress_and_outcomes() -> None:
    task = fold(*ready(), {"type": "render", "render_id": "r1", "format": "wav24"})
    assert task.state is TaskState.RENDERING and task.active_render is not None
    task = apply(task, {"type": "render_progress", "render_id": "r1", "progress": 0.5})
    assert task.renders["r1"].progress == 0.5
    task = apply(task, {"type": "render_done", "render_id": "r1", "file": "r1.wav", "bytes": 9})
    assert task.state is TaskState.READY
    assert task.renders["r1"].state is RenderState.DONE and task.renders["r1"].progress == 1.0
    task = apply(task, {"type": "render", "render_id": "r2", "format": "float32"})
    task = apply(task, {"type": "render_cancelled", "render_id": "r2"})
    assert task.state is TaskState.READY and task.renders["r2"].state is RenderState.CANCELLED
    assert task.renders["r2"].error == "cancelled"  # an event from before reasons were kept


def test_a_cancelled_render_keeps_its_reason() -> None:
    """Found by the chaos suite: a cancelled render had no reason (``error`` None), while
    every render that does not finish must say why."""
    task = fold(*ready(), {"type": "render", "render_id": "r1", "format": "wav24"},
                {"type": "render_cancelled", "render_id": "r1",
                 "reason": "cancelled by the operator"})
    assert task.renders["r1"].view()["error"] == "cancelled by the operator"


def test_a_component_down_fails_the_task_until_it_is_back_and_accepts() -> None:
    task = fold(*ready(), {"type": "play"},
                {"type": "play_failed", "reason": "d1 went down: connection lost"},
                {"type": "component_down", "component": "d1", "reason": "connection lost"})
    assert task.state is TaskState.FAILED and "d1 is down" in (task.error or "")
    assert task.play and task.play["error"] == "d1 went down: connection lost"
    task = apply(task, {"type": "resync", "component": "d1"})
    assert task.state is TaskState.FAILED
    task = apply(task, {"type": "accepted", "component": "d1"})
    assert task.state is TaskState.READY and task.error is None


def test_render_failure_by_a_down_component_fails_the_task() -> None:
    task = fold(*ready(), {"type": "render", "render_id": "r1", "format": "wav24"},
                {"type": "render_failed", "render_id": "r1", "reason": "e went down",
                 "task_failed": True})
    assert task.state is TaskState.FAILED and task.renders["r1"].error == "e went down"


def test_params_update_the_spec() -> None:
    task = fold(*ready(), {"type": "params", "instance_id": "c1", "params": {"ratio": 8}})
    assert task.spec["instances"]["c1"]["params"] == {"ratio": 8}


def test_released_is_final() -> None:
    task = fold(*ready(), {"type": "released"})
    assert task.state is TaskState.RELEASED and task.view()["state"] == "released"


COMMANDS = ["play", "stop", "render", "render_cancel", "release", "patch"]
ALLOWED = {
    TaskState.PENDING: {"release"},
    TaskState.READY: {"play", "render", "release", "patch"},
    TaskState.PLAYING: {"stop", "release", "patch"},
    TaskState.RENDERING: {"render_cancel", "release", "patch"},
    TaskState.FAILED: {"release"},
    TaskState.RELEASED: set(),
}


@pytest.mark.parametrize("state", list(TaskState))
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_in_every_state(state: TaskState, command: str) -> None:
    task = fold()
    task.state = state
    if command in ALLOWED[state]:
        require(task, command)
    else:
        with pytest.raises(Conflict) as info:
            require(task, command)
        assert f"it is {state.value}" in str(info.value)


@pytest.mark.parametrize("state", list(TaskState))
def test_the_view_carries_the_commands_its_state_allows_sorted(state: TaskState) -> None:
    task = fold()
    task.state = state
    assert allowed_commands(state) == sorted(ALLOWED[state])
    assert task.view()["commands"] == sorted(ALLOWED[state])


def test_events_before_reserved_are_refused() -> None:
    with pytest.raises(ValueError):
        apply(None, {"type": "play"})
    with pytest.raises(ValueError):
        apply(fold(), {"type": "teleport"})


def test_a_farm_render_folds_its_parts_their_moves_and_the_assembly() -> None:
    farm = {"chunks": 3, "skipped": {"r9": "no runner by that name is registered"},
            "parts": [{"name": "r1", "chunks": [0]}, {"name": "engine", "chunks": [1, 2]}]}
    task = fold(*ready(), {"type": "render", "render_id": "r_1", "format": "wav24",
                           "farm": farm},
                {"type": "render_part", "render_id": "r_1", "part": 0, "job": "j_1",
                 "part_state": "running", "progress": 0.25},
                {"type": "render_reassigned", "render_id": "r_1", "part": 0,
                 "reason": "r1 went down: no heartbeat", "to": "engine"},
                {"type": "render_part", "render_id": "r_1", "part": 1, "part_state": "done",
                 "progress": 1.0},
                {"type": "render_assembly", "render_id": "r_1", "progress": 0.5})
    view = task.renders["r_1"].view()["farm"]
    assert task.state is TaskState.RENDERING and view["assembly"] == 0.5
    assert view["skipped"] == farm["skipped"]
    assert [(p["part"], p["name"], p["chunks"], p["state"], p["job"]) for p in view["parts"]] \
        == [(0, "r1", [0], "lost", "j_1"), (1, "engine", [1, 2], "done", None),
            (2, "engine", [0], "waiting", None)]
    assert view["parts"][0]["reason"] == "r1 went down: no heartbeat"
    plain = fold(*ready(), {"type": "render", "render_id": "r_2", "format": "wav24"})
    assert plain.renders["r_2"].view()["farm"] is None
