"""The Tasks tab: reserve through the spec editor, render, play with meters, see failures.

Real embedded hub, real engine and driver processes spawned by the console's supervisor.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest

from app.console import Console, open_console
from tests.ui.harness import QtLoop, wait_until
from ui.core.accepts import accepts
from ui.tasks.meters import FLOOR_DB
from ui.tasks.model import time_left
from ui.tasks.spec_editor import DEMO_SPEC
from ui.tasks.view import TasksView


def _demo_with(**changes: object) -> str:
    """The demo spec with a change applied to the lead track (track 1), pretty-printed."""
    spec = json.loads(DEMO_SPEC.read_text())
    spec["tracks"][1].update(changes)
    return json.dumps(spec, indent=2)


def _tasks(console: Console) -> TasksView:
    console.window.show_tab(console.window.tasks_view)
    return console.window.tasks_view


def test_the_spec_editor_points_at_the_wrong_field_as_you_type(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            view = _tasks(console)
            editor = view.editor
            assert not view.reserve_button.isEnabled()
            view.demo_button.click()
            assert editor.status.text().startswith("✓ Valid spec: 3 tracks, 4 instances")
            assert view.reserve_button.isEnabled()

            # Typing: validated shortly after the last keystroke, no button needed.
            editor.editor.setPlainText(_demo_with(gain_db="loud"))
            await wait_until(lambda: "gain_db" in editor.status.text(), "an error shown")
            text = editor.status.text()
            assert text.startswith("Line ") and "tracks[1].gain_db" in text
            assert "valid number" in text
            assert editor.highlighted_text() == '"loud"'
            line = int(text.split()[1].rstrip(","))
            assert '"loud"' in editor.text().splitlines()[line - 1]
            assert not view.reserve_button.isEnabled()

            # A cross-reference error (no pydantic loc) is still found in the text.
            editor.set_text(_demo_with(chain=["no-such-instance"]))
            assert "tracks[1].chain[0]" in editor.status.text()
            assert editor.highlighted_text() == '"no-such-instance"'

            editor.set_text('{"sample_rate": 48000,\n "tracks": [}')
            assert editor.status.text().startswith("Line 2, column 13: not valid JSON")

            # Valid, but the hub refuses it: no engine is up. Shown inline, not modal.
            editor.set_text(_demo_with())
            assert view.reserve_button.isEnabled()
            reserving = view.reserve()
            assert reserving is not None
            await wait_until(reserving.done, "the reservation answered")
            assert "the hub refused it" in editor.status.text()
            assert "no engine is up" in editor.status.text()
            notes = console.window.notifications.shown()
            assert notes and notes[0].title == "Reserve"
            assert view.model.rowCount() == 0

    qt_loop.run(scenario())


def test_reserve_render_save_play_with_meters_and_a_killed_driver_fails_the_play(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            for kind in ("engine", "driver", "driver"):
                await console.supervisor.spawn(kind)
            await wait_until(lambda: all(console.state_of(n) == "up"
                                         for n in ("engine-1", "driver-1", "driver-2")),
                             "engine and drivers up")
            view = _tasks(console)
            panel = view.panel
            view.load_demo()
            view.reserve_button.click()
            await wait_until(lambda: view.selected_task() is not None
                             and view.selected_task()["state"] == "ready",  # type: ignore[index]
                             "the task reserved and ready")
            task_id = view.selected_task()["id"]  # type: ignore[index]
            assert view.selected_task()["commands"] == [  # type: ignore[index]
                "patch", "play", "release", "render"]  # what the buttons follow
            assert panel.title.text() == f"Task {task_id}"
            assert panel.play_button.isEnabled() and panel.render_button.isEnabled()
            assert not panel.stop_button.isEnabled() and not panel.cancel_button.isEnabled()
            assert panel.release_button.isEnabled()

            # Render: the dialog asks where (no runner registered: the engine only), the
            # bar climbs to 100 % and the file appears.
            seen: list[int] = []
            panel.progress.valueChanged.connect(seen.append)
            panel.render_button.click()
            await wait_until(lambda: panel.render_dialog is not None
                             and panel.render_dialog.isVisible(), "the render dialog open")
            dialog = panel.render_dialog
            assert dialog is not None and dialog.windowTitle() == f"Render task {task_id}"
            assert dialog.engine_choice.isChecked() and not dialog.farm_choice.isEnabled()
            assert "no runner is registered" in dialog.farm_note.text()
            dialog.render_button.click()
            assert not dialog.isVisible()
            console.window.activateWindow()  # as a window manager does when a dialog closes
            await wait_until(lambda: view.selected_task()["state"] == "rendering",  # type: ignore[index]
                             "rendering")
            assert panel.cancel_button.isEnabled() and not panel.play_button.isEnabled()
            await wait_until(lambda: view.selected_task()["state"] == "ready",  # type: ignore[index]
                             "the render finished", within=60)
            assert panel.progress.value() == 1000 and panel.progress_label.text() == "done"
            assert seen and max(seen) == 1000
            fetching = panel.fetch_selected_render()
            assert fetching is not None
            rendered = await fetching  # the embedded hub's own file, at once
            assert rendered.is_file() and rendered.stat().st_size > 0
            assert panel.open_folder_button.isEnabled() and panel.save_button.isEnabled()
            saving = panel.save_render_to(tmp_path / "copy.wav")
            assert saving is not None
            await wait_until(saving.done, "saved")
            assert (tmp_path / "copy.wav").read_bytes() == rendered.read_bytes()
            assert panel.farm.isHidden()  # an engine render has no parts

            # A farm render's view: one row per part under the bar, and who was skipped.
            task = view.selected_task() or {}
            farm = {"chunks": 2, "skipped": {"r2": "it is down"}, "assembly": 0.0,
                    "parts": [{"part": 0, "name": "r1", "chunks": [0], "state": "running",
                               "progress": 0.4, "job": "j_0123456789ab", "reason": None},
                              {"part": 1, "name": "engine", "chunks": [1],
                               "state": "done", "progress": 1.0, "job": None,
                               "reason": None}]}
            running = {**task["renders"][-1], "render_id": "r_000000000002",
                       "state": "running", "progress": 0.7, "farm": farm}
            panel.show_task({**task, "state": "rendering",
                             "renders": [*task["renders"], running]})
            assert not panel.farm.isHidden() and panel.progress.value() == 700
            assert [(r.who.text(), r.chunks.text(), r.status.text())
                    for r in panel.farm.rows] == [
                ("Part 1: r1", "chunk 1 of 2", "rendering 40 %"),
                ("Part 2: engine-1 (engine)", "chunk 2 of 2", "done")]
            assert panel.farm.skipped.text() == "Skipped: r2 (it is down)"
            assert panel.renders.item(1).text().endswith("· farm")
            panel.show_task(task)
            assert panel.farm.isHidden()

            # Play with Space: the meters move, the stream goes to the null sink.
            view.table.setFocus()
            QTest.keyClick(view.table, Qt.Key.Key_Space)
            await wait_until(lambda: view.selected_task()["state"] == "playing",  # type: ignore[index]
                             "playing")
            assert panel.stop_button.isEnabled() and not panel.play_button.isEnabled()
            meters = panel.meters
            await wait_until(lambda: meters.readings > 5 and meters.audio_blocks > 5
                             and max(meters.painted_peaks) > FLOOR_DB, "the meters moving")
            paints = meters.paints
            await wait_until(lambda: meters.paints >= paints + 10, "painting at 30 Hz")
            assert "dBFS" in meters.readout.text()
            await wait_until(lambda: "null sink" in meters.sink_label.text(),
                             "the null sink shown")
            assert len(meters.curves[0].getData()[0]) > 3  # the history scrolls

            # A driver dies mid-play: the play fails with the reason, shown on the task.
            os.kill(console.supervisor.agents["driver-1"].pid or 0, signal.SIGKILL)
            await wait_until(lambda: view.selected_task()["state"] == "failed",  # type: ignore[index]
                             "the play failed", within=10)
            assert "driver-1" in panel.state_label.text()
            assert not panel.play_button.isEnabled() and not panel.stop_button.isEnabled()
            assert panel.release_button.isEnabled()
            panel.release_button.click()
            await wait_until(lambda: view.selected_task()["state"] == "released",  # type: ignore[index]
                             "released")
            assert not panel.release_button.isEnabled()

    qt_loop.run(scenario(), timeout=120)


def test_time_left_follows_the_average_pace() -> None:
    now = time.time()
    assert time_left({"progress": 0.25, "started_at": now - 10}, now) == 30.0
    assert time_left({"progress": 0.0, "started_at": now}, now) is None


def test_transport_offers_only_the_commands_the_task_lists() -> None:
    """The hub's ``commands`` decide, not the state; a hub that lists none (an older
    version) gets no commands offered, and no error."""
    playing = {"id": "t_1", "state": "playing", "commands": ["patch", "release", "stop"]}
    assert accepts(playing, "stop") and accepts(playing, "release")
    assert not accepts(playing, "play") and not accepts(playing, "render_cancel")
    assert not accepts({**playing, "state": "ready", "commands": []}, "play")
    older = {"id": "t_1", "state": "ready"}
    assert not any(accepts(older, c) for c in ("play", "stop", "render", "release"))
    assert not accepts({**older, "commands": None}, "play") and not accepts(None, "play")
