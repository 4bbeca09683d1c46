"""The event log reads as sentences, leaves out what would drown the rest, and filters live."""

from __future__ import annotations

import time
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from ui.components.event_log import RING_SIZE, EventLogView, category, describe

TS = time.time()


def event(type_: str, subject: str, **data: Any) -> dict[str, Any]:
    return {"type": type_, "subject": subject, "ts": TS, "data": data}


@pytest.fixture
def log(qtbot: QtBot) -> EventLogView:
    view = EventLogView()
    qtbot.addWidget(view)
    view.resize(700, 300)
    view.show()
    return view


def fill(log: EventLogView) -> None:
    log.append_event(event("component.registered", "engine-1", kind="engine",
                           state="half_open"))
    log.append_event(event("component.state", "engine-1", old="half_open", new="up",
                           reason="answered a health check"))
    log.append_event(event("task.reserved", "t_1", state="pending"))
    log.append_event(event("job.succeeded", "j_7", state="succeeded", runner="farm-1"))
    log.append_event(event("runner.state", "farm-1", phase="ready"))
    log.append_event(event("node.linked", "node-a"))
    log.append_note("Live updates stopped: hub gone")
    log.flush()  # as the timer does FLUSH_MS later


def test_task_events_read_as_sentences() -> None:
    line = describe({"type": "task.play_failed", "subject": "t_1",
                     "data": {"state": "failed", "reason": "driver-1 went down"}})
    assert line == "task <b>t_1</b> play failed: driver-1 went down (task failed)"
    line = describe({"type": "task.accepted", "subject": "t_1",
                     "data": {"state": "ready", "component": "engine-1"}})
    assert line == "task <b>t_1</b> accepted: engine-1 (task ready)"


def test_job_runner_and_node_events_read_as_sentences() -> None:
    assert describe(event("job.failed", "j_1", state="failed", runner="farm-1",
                          error="exit code 2")) == \
        "job <b>j_1</b> failed: exit code 2 (job failed on farm-1)"
    assert describe(event("runner.revoked", "farm-2")) == \
        "runner <b>farm-2</b> revoked: its secret is refused from now on"
    assert describe(event("node.linked", "node-a")) == \
        "node <b>node-a</b> linked: its flows are listed"


@pytest.mark.parametrize(("kind", "key"), [
    ("component.state", "component"), ("config.stored", "component"),
    ("enrollment.created", "component"), ("hub.started", "component"),
    ("task.render_done", "task"), ("job.queued", "job"), ("runner.inventory", "runner"),
    ("node.unregistered", "flow"), ("something.else", "other"),
])
def test_each_event_type_falls_in_one_kind(kind: str, key: str) -> None:
    assert category(kind) == key


def test_render_progress_is_left_to_the_progress_bar(log: EventLogView) -> None:
    for p in (0.1, 0.2, 0.3):
        log.append_event(event("task.render_progress", "t_1", progress=p))
    log.append_event(event("job.report", "j_1", event="progress", progress=0.5))
    log.append_event(event("task.render_done", "t_1", state="ready"))
    lines = log.lines()
    assert len(lines) == 1 and "render done" in lines[0]


def test_the_kind_filter_shows_only_that_kind_and_counts_it(
    log: EventLogView, qtbot: QtBot,
) -> None:
    fill(log)
    assert log.count_label.text() == "showing 7 of 7"
    assert not log.clear_filter_button.isEnabled()  # nothing to clear yet

    log.kind_filter.setCurrentIndex(log.kind_filter.findText("Components"))
    assert [line.split(maxsplit=1)[1] for line in log.lines()] == [
        "engine-1 (engine) registered; half-open until its first health check is answered",
        "engine-1 half-open → up: answered a health check",
    ]
    assert log.count_label.text() == "showing 2 of 7"
    assert log.clear_filter_button.isEnabled()

    log.kind_filter.setCurrentIndex(log.kind_filter.findText("Console notes"))
    assert log.lines() == ["Live updates stopped: hub gone"]
    log.kind_filter.setCurrentIndex(log.kind_filter.findText("Jobs"))
    assert log.lines()[0].endswith("job j_7 succeeded (job succeeded on farm-1)")
    log.kind_filter.setCurrentIndex(log.kind_filter.findText("Flows / nodes"))
    assert log.lines()[0].endswith("node node-a linked: its flows are listed")


def test_the_search_filters_as_you_type_in_any_case(log: EventLogView, qtbot: QtBot) -> None:
    fill(log)
    QTest.keyClicks(log.search, "FARM")
    qtbot.waitUntil(lambda: log.count_label.text() == "showing 2 of 7", timeout=2000)
    assert all("farm-1" in line for line in log.lines()) and len(log.lines()) == 2
    # Combined with a kind: both must match.
    log.kind_filter.setCurrentIndex(log.kind_filter.findText("Runners"))
    assert log.lines()[0].endswith("runner farm-1 ready")
    assert log.count_label.text() == "showing 1 of 7"
    # Rich text is searched as the operator reads it, not as its markup.
    log.kind_filter.setCurrentIndex(0)
    log.search.clear()
    log.search.setText("up → down")  # keyClicks types ASCII only
    log.append_event(event("component.state", "engine-1", old="up", new="down",
                           reason="connection closed"))
    qtbot.waitUntil(lambda: log.count_label.text() == "showing 1 of 8", timeout=2000)
    assert log.lines() == [log.lines()[0]] and "connection closed" in log.lines()[0]


def test_new_lines_that_match_are_appended_and_others_only_counted(
    log: EventLogView, qtbot: QtBot,
) -> None:
    fill(log)
    log.set_filter("task")
    log.append_event(event("task.ready", "t_2", state="ready"))
    log.append_event(event("component.state", "engine-1", old="up", new="down", reason="x"))
    assert [line.split(maxsplit=1)[1] for line in log.lines()] == [
        "task t_1 reserved (task pending)", "task t_2 ready (task ready)"]
    assert log.count_label.text() == "showing 2 of 9"


def test_clear_filter_shows_everything_again(log: EventLogView, qtbot: QtBot) -> None:
    fill(log)
    log.kind_filter.setCurrentIndex(log.kind_filter.findText("Tasks"))
    QTest.keyClicks(log.search, "nothing like this")
    qtbot.waitUntil(lambda: log.count_label.text() == "showing 0 of 7", timeout=2000)
    assert log.lines() == []
    QTest.mouseClick(log.clear_filter_button, Qt.MouseButton.LeftButton)
    assert log.kind_filter.currentText() == "All kinds" and log.search.text() == ""
    assert len(log.lines()) == 7 and log.count_label.text() == "showing 7 of 7"
    assert not log.clear_filter_button.isEnabled()


def test_the_ring_keeps_the_newest_lines_and_the_text_follows_it(log: EventLogView) -> None:
    log.set_filter("task")
    for i in range(RING_SIZE + 300):
        kind = "task.ready" if i % 2 else "component.config"
        log.append_event(event(kind, f"s{i}", state="ready"))
    shown, kept = log.counts()
    assert kept == RING_SIZE
    lines = log.lines()
    assert len(lines) == shown == RING_SIZE // 2
    assert "task s301 ready" in lines[0] and f"task s{RING_SIZE + 299} ready" in lines[-1]
    log.clear_filter()
    assert len(log.lines()) == RING_SIZE and "s300 config changed" in log.lines()[0]


def test_500_events_a_second_stay_cheap(log: EventLogView, qtbot: QtBot) -> None:
    """A second's worth of events at the benchmark's rate costs a small part of a second,
    and a filter change over the full ring stays well under a second."""
    log.set_filter("component")
    started = time.perf_counter()
    for i in range(500):
        log.append_event(event("component.state", f"engine-{i}", old="up", new="down",
                               reason="3 health checks in a row unanswered within 0.5 s"))
        if i % 25 == 0:
            log.flush()  # as the 50 ms timer would, 20 times a second
    log.flush()
    per_second = time.perf_counter() - started
    for i in range(RING_SIZE):
        log.append_event(event("task.ready", f"t{i}", state="ready"))
    started = time.perf_counter()
    log.set_filter(None, "")
    rerender = time.perf_counter() - started
    print(f"500 events: {per_second * 1000:.0f} ms; re-render of {RING_SIZE}: "
          f"{rerender * 1000:.0f} ms")
    assert per_second < 0.25, f"500 events took {per_second:.2f} s of GUI time"
    assert rerender < 1.5, f"re-rendering the ring took {rerender:.2f} s"
    assert len(log.lines()) == RING_SIZE


def test_progress_ticks_stay_out_of_the_log_but_a_farm_part_s_moves_stay_in() -> None:
    from ui.components.event_log import is_quiet

    def event(kind: str, **data: object) -> dict[str, object]:
        return {"type": kind, "data": data}

    assert is_quiet(event("task.render_progress", progress=0.5))
    assert is_quiet(event("task.render_assembly", progress=0.5))
    assert is_quiet(event("task.render_part", part=0, progress=0.4))
    assert not is_quiet(event("task.render_part", part=0, part_state="lost", reason="down"))
    assert not is_quiet(event("task.render_part", part=1, job="j_1"))
    assert not is_quiet(event("task.render_reassigned", part=0, to="engine"))


def test_a_farm_part_s_moves_say_which_part_and_where_its_chunks_went() -> None:
    part = {"type": "task.render_part", "subject": "t_1",
            "data": {"part": 0, "part_state": "running", "state": "rendering"}}
    assert describe(part) == "task <b>t_1</b> render part 1 running"
    lost = {"type": "task.render_reassigned", "subject": "t_1",
            "data": {"part": 1, "to": "engine", "reason": "r2 went down: <gone>"}}
    assert describe(lost) == ("task <b>t_1</b> render part 2 lost, its chunks go to engine: "
                              "r2 went down: &lt;gone&gt;")
