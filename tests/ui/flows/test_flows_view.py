"""The Flows tab: the catalog, launching with a generated form, runs, events and locks.

Real embedded hub and node; the lock scenario also spawns a real node agent that loads
the integration tests' flows (``gate`` denies positive gains).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QCheckBox, QLineEdit

from app.console import Console, open_console
from tests.ui.harness import ROOT, QtLoop, wait_until
from ui.flows.lock_panel import LockPanel, format_left
from ui.flows.schema_form import FieldError, SchemaForm
from ui.flows.view import FlowsView

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
            await _verdict(panel, sent)
            assert panel.verdict.text().startswith("✗ Denied (422): positive gain would clip")
            assert gain.text() == "3"  # what was typed stays
            await wait_until(lambda: "denied: positive gain would clip"
                             in view.events.toPlainText(), "the denial in the events")

            gain.setText("-3")
            sent = panel.submit()
            assert sent is not None
            await _verdict(panel, sent)
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


def test_cancel_a_long_run_and_see_a_nested_runs_children(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            view = _flows(console)
            node = console.host.node
            assert node is not None
            assert not view.cancel_button.isEnabled() and not view.children_tree.isVisible()
            await wait_until(lambda: view.select_flow(node.name, "count"), "the catalog")
            view.inputs.set_values({"to": 1000, "delay_s": 0.1})  # 100 s
            assert view.launch() is not None
            await wait_until(lambda: view.runs.runs and view.runs.runs[0].state == "running",
                             "the long run running")
            assert view.cancel_button.isEnabled()
            view.cancel_button.click()
            await wait_until(lambda: view.runs.runs[0].state == "cancelled", "cancelled")
            assert not view.cancel_button.isEnabled()
            assert "cancelled" in view.run_title.text()
            await wait_until(lambda: "final" in view.events.toPlainText(), "the final event")

            # fan-out runs hello three times as nested runs (here on the same node).
            assert view.select_flow(node.name, "fan-out")
            view.inputs.set_values({"count": 3, "name": "n"})
            assert view.launch() is not None
            await wait_until(lambda: len(view.runs.runs) == 2
                             and view.runs.runs[1].state == "done", "fan-out done")
            parent = view.runs.runs[1]
            assert view.selected_run() is parent and not view.cancel_button.isEnabled()
            await wait_until(lambda: len(view.child_states()) == 3, "three children shown")
            assert view.children_tree.isVisible()
            assert set(view.child_states().values()) == {"done"}
            assert set(view.child_states()) == {c["fid"] for c in parent.view["children"]}
            first = view.children_tree.topLevelItem(0)
            assert first is not None and first.text(0) == "hello"
            assert first.text(1) == node.name

            # Double-click a child: it is followed in the runs list like any run.
            child_fid = first.text(2)
            view.children_tree.itemDoubleClicked.emit(first, 0)
            await wait_until(lambda: len(view.runs.runs) == 3
                             and view.runs.runs[2].state == "done", "the child followed")
            child = view.runs.runs[2]
            assert child.fid == child_fid and view.selected_run() is child
            assert not view.children_tree.isVisible()  # hello starts no runs of its own
            assert str(child.view["result"]).startswith("Hello, n ")
            assert child.view["parent"] == {"node": node.name, "fid": parent.fid}

    qt_loop.run(scenario(), timeout=90)


def test_a_nested_runs_locked_child_is_shown_and_answered_through_the_parent(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            await console.supervisor.spawn("node", extra_args=["--flows", str(GATE_FLOWS)])
            view = _flows(console)
            for _ in range(100):
                await view.refresh()
                if view.select_flow("node-1", "nest"):
                    break
                await asyncio.sleep(0.2)
            assert view.selected_flow() is not None, "node-1's nest flow never appeared"
            view.inputs.set_values({"node": "node-1", "flow": "gate",
                                    "inputs": {"release_timeout": 10}})
            assert view.launch() is not None
            await wait_until(lambda: view.runs.runs and view.runs.runs[0].state == "locked",
                             "the parent locked by its child")
            parent = view.runs.runs[0]
            await wait_until(lambda: list(view.child_states().values()) == ["locked"],
                             "the child shown locked")
            item = view.children_tree.topLevelItem(0)
            assert item is not None and item.text(0) == "gate"
            assert item.text(4) == "Give a gain (not positive)"
            child_fid = item.text(2)
            assert child_fid != parent.fid

            panel = view.lock_panel
            await wait_until(panel.isVisible, "the child's lock in the parent's panel")
            assert panel.lock is not None and panel.lock["fid"] == child_fid
            gain = panel.form.fields["gain_db"]
            assert isinstance(gain, QLineEdit)
            gain.setText("-2")
            sent = panel.submit()
            assert sent is not None
            await _verdict(panel, sent)
            assert panel.verdict.text() == "✓ Released: the flow accepted these values."
            await wait_until(lambda: parent.state == "done", "the parent done")
            await wait_until(lambda: list(view.child_states().values()) == ["done"],
                             "the child shown done")
            assert parent.view["result"] == {"gain_db": -2.0}

    qt_loop.run(scenario(), timeout=90)


async def _verdict(panel: LockPanel, sent: asyncio.Task[Any]) -> None:
    """Wait for the answer to be shown: a task is done a loop turn before its callbacks run."""
    await wait_until(lambda: sent.done() and not panel.verdict.text().startswith("Submitted"),
                     "the verdict shown")
