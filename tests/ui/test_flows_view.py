"""The Flows tab: the catalog, launching with a generated form, runs, events and locks.

Real embedded hub and node; the lock scenario also spawns a real node agent that loads
the integration tests' flows (``gate`` denies positive gains).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QCheckBox, QLineEdit

from tests.ui.harness import ROOT, Console, QtLoop, open_console, wait_until
from ui.flows_view import FlowsView, format_left
from ui.schema_form import FieldError, SchemaForm

GATE_FLOWS = ROOT / "tests" / "integration" / "node_flows.py"


def _flows(console: Console) -> FlowsView:
    console.window.show_tab(console.window.flows_view)
    return console.window.flows_view


def test_launch_a_flow_with_its_inputs_form_and_follow_the_run(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            view = _flows(console)
            node = console.host.node
            assert node is not None
            await wait_until(lambda: view.select_flow(node.name, "count"), "the catalog")
            assert set(view.inputs.fields) == {"to", "delay_s"}
            assert view.inputs.fields["delay_s"].text() == "0.1"  # type: ignore[attr-defined]
            to = view.inputs.fields["to"]
            assert isinstance(to, QLineEdit)
            to.setText("2000")
            assert view.launch() is None
            assert view.launch_status.text() == "✗ to: must be at most 1000"
            to.setText("3")
            view.inputs.fields["delay_s"].setText("0.05")  # type: ignore[attr-defined]
            launching = view.launch()
            assert launching is not None
            await wait_until(lambda: view.runs.runs and view.runs.runs[0].state == "done",
                             "the run done")
            run = view.runs.runs[0]
            assert view.selected_run() is run and run.view["result"] == 3
            await wait_until(lambda: "final" in view.events.toPlainText(), "the final event")
            assert "progress  100 %" in view.events.toPlainText()
            assert "done" in view.run_title.text() and "result 3" in view.run_title.text()
            assert not view.lock_panel.isVisible()

            # hello launched without its inputs starts locked, asking for them; the run is
            # left locked at shutdown, which must stop following it cleanly.
            assert view.select_flow(node.name, "hello")
            assert view.launch() is not None  # "name" is required but empty: no inputs
            await wait_until(lambda: len(view.runs.runs) == 2
                             and view.runs.runs[1].state == "locked", "hello locked")
            await wait_until(view.lock_panel.isVisible, "its lock panel")
            assert set(view.lock_panel.form.fields) == {"name"}
            assert view.lock_panel.submit() is None
            assert view.lock_panel.verdict.text() == "✗ name: required"

    qt_loop.run(scenario())


def test_a_locked_run_is_answered_in_the_lock_panel_denied_then_released(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            await console.supervisor.spawn("node", extra_args=["--flows", str(GATE_FLOWS)])
            view = _flows(console)

            async def gate_listed() -> bool:
                await view.refresh()
                return view.select_flow("node-1", "gate")

            for _ in range(100):
                if await gate_listed():
                    break
                await asyncio.sleep(0.2)
            assert view.selected_flow() is not None, "node-1's gate flow never appeared"
            view.launch()
            await wait_until(lambda: view.runs.runs and view.runs.runs[0].state == "locked",
                             "the run locked")
            panel = view.lock_panel
            await wait_until(panel.isVisible, "the lock panel shown")
            assert panel.prompt.text() == "Give a gain (not positive)"
            assert "(no-candidate timeout)" in panel.countdown.text()
            gain = panel.form.fields["gain_db"]
            assert isinstance(gain, QLineEdit)

            gain.setText("30")  # outside the schema: caught by the form, never sent
            assert panel.submit() is None
            assert panel.verdict.text() == "✗ gain_db: must be at most 24"

            gain.setText("3")  # valid, but the flow denies it
            sent = panel.submit()
            assert sent is not None
            await wait_until(sent.done, "the verdict")
            assert panel.verdict.text().startswith("✗ Denied (422): positive gain would clip")
            assert gain.text() == "3"  # what was typed stays
            await wait_until(lambda: "denied: positive gain would clip"
                             in view.events.toPlainText(), "the denial in the events")

            gain.setText("-3")
            sent = panel.submit()
            assert sent is not None
            await wait_until(sent.done, "the verdict")
            assert panel.verdict.text() == "✓ Released: the flow accepted these values."
            await wait_until(lambda: view.runs.runs[0].state == "done", "the run done")
            assert view.runs.runs[0].view["result"] == {"gain_db": -3.0}
            await wait_until(lambda: not panel.isVisible(), "the lock panel gone")

    qt_loop.run(scenario(), timeout=90)


def test_schema_form_covers_text_number_boolean_enum_and_arrays(qt_loop: QtLoop) -> None:
    form = SchemaForm({
        "type": "object", "required": ["name", "count"],
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer", "minimum": 1},
            "loud": {"type": "boolean", "default": True},
            "mode": {"enum": ["fast", "slow"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "levels": {"type": "array", "items": {"type": "number"}},
            "level": {"$ref": "#/$defs/Level"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "$defs": {"Level": {"type": "number", "maximum": 0}},
    })
    try:
        form.value()
    except FieldError as exc:
        assert exc.field == "name" and exc.message == "required"
    else:
        raise AssertionError("a required field was missing")
    form.set_values({"name": "Ada", "count": 2, "tags": ["a", "b"], "levels": [1, -2.5],
                     "level": -1, "mode": "slow"})
    assert isinstance(form.fields["loud"], QCheckBox)
    assert form.value() == {"name": "Ada", "count": 2, "loud": True, "mode": "slow",
                            "tags": ["a", "b"], "levels": [1.0, -2.5], "level": -1.0}
    form.set_values({"count": "two"})
    try:
        form.value()
    except FieldError as exc:
        assert exc.field == "count" and "whole number" in exc.message
    assert format_left(3 * 3600 + 5) == "3:00:05" and format_left(65) == "1:05"
