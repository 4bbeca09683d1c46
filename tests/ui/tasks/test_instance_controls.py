"""Live parameter controls of a task's instances: real hub, engine and drivers.

A drag is a burst of slider moves (key presses here, each one a real key event); the
hub must see at most ~20 changes a second and the last position, and the instance on its
driver must end at that value. A value the hub refuses is shown under the control, which
returns to the last accepted value.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.console import Console, open_console
from backend.audio.models import MODELS, ParamList, check_params
from tests.ui.harness import QtLoop, wait_until
from ui.core.access import Access
from ui.core.coroutines import CoroutineRunner
from ui.tasks.coalescer import SEND_INTERVAL_S
from ui.tasks.instance_controls import InstanceControls
from ui.tasks.param_row import NumberEditor
from ui.tasks.spec_editor import DEMO_SPEC
from ui.tasks.view import TasksView


def test_the_controls_offer_exactly_the_models_ranges() -> None:
    """Every end of every slider is a value the hub accepts; frequencies move on a log scale."""
    for name, info in MODELS.items():
        for control in info.controls():
            items = control.item if isinstance(control, ParamList) else (control,)
            for item in items:
                if item.kind != "number":
                    continue
                assert item.minimum is not None and item.maximum is not None
                for value in (item.minimum, item.maximum, item.default):
                    params = ({control.name: [{item.name: value}]}
                              if isinstance(control, ParamList) else {item.name: value})
                    check_params(name, params)
    eq = MODELS["eq"].controls()[0]
    assert isinstance(eq, ParamList) and eq.max_items == 16
    freq = {c.name: c for c in eq.item}["freq_hz"]
    assert freq.log and freq.unit == "Hz" and (freq.minimum, freq.maximum) == (10.0, 20000.0)
    assert {c.name: c for c in eq.item}["type"].choices == ("peaking", "low_shelf",
                                                             "high_shelf")


def test_the_controls_are_enabled_exactly_when_the_hub_lists_patch(qapp: QApplication) -> None:
    """The task's ``commands`` decide, whatever its state; a hub that lists none (an older
    version) gets disabled controls, not a crash and not a guess."""
    bridge = SimpleNamespace(access=Access("operator"))  # sends nothing
    controls = InstanceControls(bridge, CoroutineRunner())  # type: ignore[arg-type]
    task: dict[str, Any] = {"id": "t_000000000001", "state": "ready",
                            "spec": json.loads(DEMO_SPEC.read_text()),
                            "commands": ["patch", "play", "release", "render"]}

    def enabled() -> set[bool]:
        return {row.editor.isEnabled() for box in controls.boxes.values()
                for row in box.all_rows()}

    try:
        controls.show_task(task)
        assert controls.boxes and enabled() == {True}
        assert controls.box("driver-1.eq").add_buttons["bands"].isEnabled()
        assert "heard at once" in controls.note.text()

        controls.show_task({**task, "state": "playing", "commands": ["release", "stop"]})
        assert enabled() == {False}
        assert not controls.box("driver-1.eq").add_buttons["bands"].isEnabled()
        assert "The task is playing: its hub takes no parameter changes" in controls.note.text()
        row = controls.box("eq-lead").all_rows()[0]
        assert row.label.toolTip() == ("The hub takes no parameter changes while the task is "
                                       "playing")

        older = {k: v for k, v in task.items() if k != "commands"}
        controls.show_task(older)
        assert enabled() == {False}
        assert "does not list the commands" in controls.note.text()

        controls.show_task({**task, "commands": ["patch"]})  # listed again: back on
        assert enabled() == {True}
    finally:
        controls.close_senders()


def test_a_read_only_console_shows_the_values_but_takes_no_changes(
    qapp: QApplication,
) -> None:
    """With a viewer token, even a task whose hub lists ``patch`` gets disabled controls,
    each label and the note saying why."""
    viewer = SimpleNamespace(access=Access("viewer"))
    controls = InstanceControls(viewer, CoroutineRunner())  # type: ignore[arg-type]
    spec = json.loads(DEMO_SPEC.read_text())
    try:
        controls.show_task({"id": "t_000000000001", "state": "ready", "spec": spec,
                            "commands": ["patch", "play", "release", "render"]})
        rows = [row for box in controls.boxes.values() for row in box.all_rows()]
        assert rows and {row.editor.isEnabled() for row in rows} == {False}
        assert not controls.box("driver-1.eq").add_buttons["bands"].isEnabled()
        reason = Access("viewer").reason
        assert {row.label.toolTip() for row in rows} == {reason}
        assert controls.note.text().startswith("Read-only: this console's token is a viewer")
        comp = controls.box("driver-1.comp")
        assert comp.row("threshold_db").value() == -18  # the hub's value, shown
    finally:
        controls.close_senders()


def test_a_log_slider_spends_equal_travel_per_octave(qapp: QApplication) -> None:
    eq = MODELS["eq"].controls()[0]
    assert isinstance(eq, ParamList)
    editor = NumberEditor({c.name: c for c in eq.item}["freq_hz"])
    steps = [editor.position(f) for f in (20.0, 40.0, 80.0, 160.0)]
    assert steps[1] - steps[0] == pytest.approx(steps[2] - steps[1], abs=1)
    assert editor.value_at(0) == 10.0 and editor.value_at(1000) == 20000.0
    editor.set_value(0.7071067811865476 * 1000)
    assert editor.value() == pytest.approx(707.1067811865476)  # exact, not as displayed


def _long_demo() -> str:
    """The demo spec, 60 s long, so it keeps playing while the test turns its knobs."""
    spec = json.loads(DEMO_SPEC.read_text())
    spec["duration_s"] = 60
    for track in spec["tracks"]:
        track["source"]["duration_s"] = 60
    return json.dumps(spec, indent=2)


def _tasks(console: Console) -> TasksView:
    console.window.show_tab(console.window.tasks_view)
    return console.window.tasks_view


def _driver_params(console: Console, driver: str, iid: str) -> dict[str, Any]:
    """What the driver itself reports for its instance (it announces after each change)."""
    for component in console.bridge.snapshot():
        if component["id"] == driver:
            for instance in (component.get("report") or {}).get("instances") or []:
                if instance["id"] == iid:
                    return dict(instance["params"])
    return {}


def test_turn_knobs_while_the_demo_plays_and_see_a_refusal_inline(
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
            controls = panel.instances
            assert "Select a task" in controls.note.text() and not controls.boxes
            view.editor.set_text(_long_demo())
            view.reserve_button.click()
            await wait_until(lambda: (view.selected_task() or {}).get("state") == "ready",
                             "the task ready")
            task_id = str(view.selected_task()["id"])  # type: ignore[index]
            # Every instance, in the order the signal meets them, with its place.
            assert list(controls.boxes) == ["driver-1.comp", "eq-lead", "driver-2.tape",
                                            "driver-1.eq"]
            comp = controls.box("driver-1.comp")
            assert comp.title() == "driver-1.comp — compressor"
            assert comp.where.text() == "fixed, on driver-1 · track bass"
            assert controls.box("eq-lead").where.text() == "dynamic, in the engine · track lead"
            threshold = comp.row("threshold_db")
            assert threshold.value() == -18.0 and threshold.editor.isEnabled()
            assert threshold.number is not None
            assert threshold.number.spin.suffix() == " dBFS"
            eq_type = controls.box("eq-lead").item_row("bands", 1, "type")
            assert eq_type.combo is not None and eq_type.value() == "high_shelf"

            panel.play_button.click()
            await wait_until(lambda: view.selected_task()["state"] == "playing",  # type: ignore[index]
                             "playing")
            # The compressor's gain reduction rides on the meters stream.
            await wait_until(lambda: comp.report_bar.isVisible()
                             and comp.report_bar.value() > 10, "gain reduction shown")
            reduction_before = comp.report_bar.value()

            # Drag the threshold down: 60 moves in about a second.
            events = console.host.hub.events
            first_event = await events.last_id()
            slider = threshold.number.slider
            slider.setFocus()
            started = time.monotonic()
            for _ in range(60):
                QTest.keyClick(slider, Qt.Key.Key_Left)
                await asyncio.sleep(0.015)
            dragged_for = time.monotonic() - started
            final = threshold.value()
            assert final == pytest.approx(-18.0 - 60 * 0.6, abs=0.01)
            await wait_until(lambda: not comp.changes.busy, "the changes sent")
            sent = [e for e in await events.since(first_event, 1000)
                    if e.type == "task.params" and e.data["instance_id"] == "driver-1.comp"]
            assert 2 <= len(sent) <= dragged_for / SEND_INTERVAL_S + 2, \
                f"{len(sent)} changes in {dragged_for:.2f} s"
            assert sent[-1].data["params"]["threshold_db"] == final  # the last one arrived
            await wait_until(lambda: _driver_params(console, "driver-1", "driver-1.comp")
                             .get("threshold_db") == final, "the driver running at the value")
            await wait_until(lambda: comp.report_bar.value() > reduction_before + 50,
                             "more gain reduction at the lower threshold")
            assert not threshold.error_text()

            # Type a frequency into a dynamic EQ band: the other band keeps its exact Q.
            freq = controls.box("eq-lead").item_row("bands", 0, "freq_hz")
            assert freq.number is not None
            spin = freq.number.spin
            spin.setFocus()
            spin.selectAll()
            QTest.keyClicks(spin, "5000")
            QTest.keyClick(spin, Qt.Key.Key_Return)
            await wait_until(lambda: view.selected_task()["spec"]["instances"]["eq-lead"]  # type: ignore[index]
                             ["params"]["bands"][0]["freq_hz"] == 5000.0,
                             "the hub's spec changed")
            bands = view.selected_task()["spec"]["instances"]["eq-lead"]["params"]["bands"]  # type: ignore[index]
            assert bands[1] == {"type": "high_shelf", "freq_hz": 8000.0, "gain_db": -4.0,
                                "q": 0.7071067811865476}
            assert freq.number.slider.value() == freq.number.position(5000.0)

            # A band added to the EQ on driver-1, then its type chosen.
            eq = controls.box("driver-1.eq")
            eq.add_buttons["bands"].click()
            await wait_until(lambda: len(eq.items["bands"]) == 2, "a second band")
            kind = eq.item_row("bands", 1, "type")
            assert kind.combo is not None
            kind.combo.setCurrentIndex(kind.combo.findData("high_shelf"))
            await wait_until(lambda: [b["type"] for b in _driver_params(
                console, "driver-1", "driver-1.eq").get("bands", [])]
                == ["low_shelf", "high_shelf"], "the driver's EQ with two bands")

            # The view lags the hub (as it can, by a few ms): freeze its updates while
            # another client releases the task, then turn a knob. The hub refuses (409);
            # the refusal is shown under the knob, which returns to the accepted value.
            drive = controls.box("driver-2.tape").row("drive_db")
            assert drive.number is not None and drive.value() == 6.0
            console.bridge.blockSignals(True)
            try:
                async with httpx.AsyncClient() as client:
                    released = await client.post(
                        f"{console.base_url}/api/v1/tasks/{task_id}/release",
                        headers={"Authorization":
                                 f"Bearer {console.host.hub.operator_token}"})
                assert released.status_code in (200, 202, 204), released.text
                drive.number.slider.setFocus()
                QTest.keyClick(drive.number.slider, Qt.Key.Key_PageUp)
                assert drive.value() == pytest.approx(9.6)  # moved, on its way
                await wait_until(lambda: bool(drive.error_text()), "the refusal shown")
            finally:
                console.bridge.blockSignals(False)
            assert drive.error_text().startswith("✗ cannot patch task")
            assert "it is released" in drive.error_text()
            assert drive.value() == 6.0  # back at the last accepted value
            assert drive.number.slider.value() == drive.number.position(6.0)

            # Once the view catches up, the controls of a released task are disabled.
            view.reserve_button.click()  # the next task event refreshes the view
            await wait_until(lambda: len(view.model.tasks()) == 2, "a second task")
            await wait_until(lambda: controls.task_id != task_id, "the new task shown")
            view.select(task_id)
            await wait_until(lambda: controls.task_id == task_id, "the released one shown")
            for box in controls.boxes.values():
                assert not any(row.editor.isEnabled() for row in box.all_rows())
            assert not controls.box("driver-1.eq").add_buttons["bands"].isEnabled()
            assert "The task is released" in controls.note.text()

    qt_loop.run(scenario(), timeout=120)
