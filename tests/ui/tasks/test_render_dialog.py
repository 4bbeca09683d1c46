"""The render dialog: this task's engine or the render farm, and the request it makes.

The runners are dicts as ``GET /api/v1/runners`` returns them (docs/runners.md); the
dialog asks the hub nothing itself. Rendering through it on a real hub is in
``test_tasks_view.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from ui.tasks.render_dialog import (
    NO_RUNNER,
    RenderDialog,
    render_request,
    runner_line,
    runner_unavailable,
)

TASK = {"id": "t_0123456789ab", "state": "ready", "engine": "engine-1"}


def _runner(name: str, state: str = "up", phase: str = "ready", cpus: float = 4,
            jobs: int = 0) -> dict[str, Any]:
    return {"id": name, "state": state, "phase": phase, "free": {"cpus": cpus},
            "jobs": [f"j_{i:012d}" for i in range(jobs)], "labels": [f"runner.{name}"],
            "connected": state != "down", "revoked": False}


RUNNERS = [_runner("r1"), _runner("r2", cpus=1, jobs=1), _runner("r3", state="down"),
           _runner("r4", phase="away")]


def test_the_request_is_the_engine_a_count_or_names() -> None:
    assert render_request("wav24", "engine", 3, ["r1"]) == {"format": "wav24", "farm": None}
    assert render_request("float32", "count", 2) == {"format": "float32",
                                                     "farm": {"runners": 2}}
    assert render_request("wav24", "names", names=["r2", "r1", "r2"]) == {
        "format": "wav24", "farm": {"runners": ["r2", "r1"]}}  # once each, in order
    with pytest.raises(ValueError, match="at least one runner"):
        render_request("wav24", "names", names=[])
    with pytest.raises(ValueError, match="at least one runner"):
        render_request("wav24", "count", 0)


def test_each_runner_line_says_whether_it_can_take_a_part() -> None:
    assert runner_line(RUNNERS[0]) == "r1 — up, ready · 4 CPUs free · idle"
    assert runner_line(RUNNERS[1]) == "r2 — up, ready · 1 CPU free · 1 job running"
    assert runner_line(RUNNERS[2]) == "r3 — down: not connected to the hub"
    assert runner_unavailable(RUNNERS[0]) is None
    assert runner_unavailable(RUNNERS[2]) == "down: not connected to the hub"
    assert (runner_unavailable(RUNNERS[3]) or "").startswith("away: its connection dropped")
    assert (runner_unavailable({**RUNNERS[0], "revoked": True}) or "").startswith("revoked")


def test_with_no_runner_the_farm_is_not_offered_and_says_why(qapp: QApplication) -> None:
    dialog = RenderDialog()
    dialog.prepare(TASK, [])
    assert dialog.windowTitle() == "Render task t_0123456789ab"
    assert dialog.engine_choice.text() == "This task's engine (engine-1)"
    assert dialog.engine_choice.isChecked() and not dialog.farm_choice.isEnabled()
    assert NO_RUNNER in dialog.farm_choice.toolTip()
    assert dialog.farm_note.text() == f"The farm is not offered: {NO_RUNNER}."
    assert not dialog.farm_note.isHidden()
    assert "bit-identical" in dialog.explained.text()
    assert dialog.render_button.isEnabled()
    seen: list[tuple[str, dict[str, Any]]] = []
    dialog.requested.connect(lambda task_id, request: seen.append((task_id, request)))
    dialog.format.setCurrentIndex(dialog.format.findData("float32"))
    dialog.render_button.click()
    assert seen == [("t_0123456789ab", {"format": "float32", "farm": None})]

    # Runners the hub could not list (a refusal, a dropped connection): not offered either.
    dialog.prepare(TASK, [], unlisted="the runners could not be listed (403)")
    assert not dialog.farm_choice.isEnabled()
    assert "could not be listed" in dialog.farm_note.text()


def test_the_farm_by_count_or_by_name(qapp: QApplication) -> None:
    dialog = RenderDialog()
    dialog.prepare(TASK, RUNNERS)
    assert dialog.farm_choice.isEnabled() and dialog.farm_note.isHidden()
    assert dialog.request() == {"format": "wav24", "farm": None}  # the engine by default
    assert not dialog.farm_box.isEnabled()

    dialog.farm_choice.click()
    assert dialog.farm_box.isEnabled() and dialog.count.isEnabled()
    assert (dialog.count.minimum(), dialog.count.maximum()) == (1, 4)  # all registered
    assert dialog.count.value() == 2  # the ones up and ready
    assert dialog.count_of.text() == "of 4 registered, 2 up and ready"
    dialog.count.setValue(3)
    assert dialog.request() == {"format": "wav24", "farm": {"runners": 3}}

    # By name: the usable ones come ticked; down and away ones are greyed, with the reason.
    dialog.names_choice.click()
    assert dialog.runner_list.isEnabled() and not dialog.count.isEnabled()
    items = [dialog.runner_list.item(i) for i in range(dialog.runner_list.count())]
    assert [i.text() for i in items] == [runner_line(r) for r in RUNNERS]
    assert [bool(i.flags() & Qt.ItemFlag.ItemIsEnabled) for i in items] == [
        True, True, False, False]
    assert items[2].toolTip() == "r3 cannot take a part now: down: not connected to the hub"
    assert "away" in items[3].toolTip()
    assert dialog.request() == {"format": "wav24", "farm": {"runners": ["r1", "r2"]}}
    items[0].setCheckState(Qt.CheckState.Unchecked)
    assert dialog.request()["farm"] == {"runners": ["r2"]}
    items[1].setCheckState(Qt.CheckState.Unchecked)  # none ticked: nothing to send
    assert not dialog.render_button.isEnabled()
    assert dialog.problem.text() == "Tick at least one runner"
    items[1].setCheckState(Qt.CheckState.Checked)
    assert dialog.render_button.isEnabled() and dialog.problem.isHidden()
    seen: list[dict[str, Any]] = []
    dialog.requested.connect(lambda _task_id, request: seen.append(request))
    dialog.render_button.click()
    assert seen == [{"format": "wav24", "farm": {"runners": ["r2"]}}]

    # Opened again: the choices stay, the list follows the runners now registered.
    dialog.prepare(TASK, [*RUNNERS, _runner("r5")])
    assert dialog.farm_choice.isChecked() and dialog.names_choice.isChecked()
    assert dialog.request()["farm"] == {"runners": ["r2"]}
    # All runners gone: back to the engine, the farm not offered.
    dialog.prepare(TASK, [])
    assert dialog.request() == {"format": "wav24", "farm": None}


def test_no_runner_up_is_said_before_the_hub_refuses(qapp: QApplication) -> None:
    dialog = RenderDialog()
    dialog.prepare(TASK, [_runner("r3", state="down")])
    assert dialog.farm_choice.isEnabled()
    assert not dialog.farm_note.isHidden()
    assert "No runner is up and ready now" in dialog.farm_note.text()
