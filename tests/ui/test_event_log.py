"""The event log reads as sentences and leaves out what would drown the rest."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from ui.event_log import EventLogView, describe


def test_task_events_read_as_sentences() -> None:
    line = describe({"type": "task.play_failed", "subject": "t_1",
                     "data": {"state": "failed", "reason": "driver-1 went down"}})
    assert line == "task <b>t_1</b> play failed: driver-1 went down (task failed)"
    line = describe({"type": "task.accepted", "subject": "t_1",
                     "data": {"state": "ready", "component": "engine-1"}})
    assert line == "task <b>t_1</b> accepted: engine-1 (task ready)"


def test_render_progress_is_left_to_the_progress_bar(qtbot: QtBot) -> None:
    log = EventLogView()
    qtbot.addWidget(log)
    for p in (0.1, 0.2, 0.3):
        log.append_event({"type": "task.render_progress", "subject": "t_1", "ts": 1.0,
                          "data": {"progress": p}})
    log.append_event({"type": "task.render_done", "subject": "t_1", "ts": 2.0,
                      "data": {"state": "ready"}})
    lines = log.lines()
    assert len(lines) == 1 and "render done" in lines[0]
