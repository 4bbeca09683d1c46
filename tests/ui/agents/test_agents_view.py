"""Agents on this machine: spawned from the Agents tab as real processes, supervised.

Every scenario runs on the qasync loop with the real embedded hub (see ``harness.py``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from app.console import Console, open_console
from backend.supervisor import CONFIG_FILE, AgentState
from tests.ui.harness import QtLoop, wait_until
from ui.agents.model import HEALTH, HOSTS, PID, PROCESS
from ui.agents.spawn_dialogs import DriversDialog


def test_spawn_an_engine_and_two_drivers_from_the_toolbar_and_see_them_up(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window = console.window
            view = window.agents_view
            assert view is not None
            window.show_tab(view)
            assert view.empty_hint.isVisible()
            view.spawn_engine_button.click()
            view.driver_count.setValue(2)
            view.spawn_drivers_button.click()
            names = ("engine-1", "driver-1", "driver-2")
            await wait_until(lambda: all(console.state_of(n) == "up" for n in names),
                             "showing the engine and both drivers up")
            model = view.model
            assert not view.empty_hint.isVisible()
            for name in names:
                row = model.row_of(name)
                assert row is not None
                agent = console.supervisor.agents[name]
                assert model.data(model.index(row, PID)) == str(agent.pid)
                assert model.data(model.index(row, PROCESS)) == "running"
                await wait_until(lambda r=row: model.data(model.index(r, HEALTH)) == "up",
                                 f"showing {name} up in the agents table")
            # The first spawned agent is selected, and its output is shown with its PID.
            assert view.select("driver-1")
            driver = console.supervisor.agents["driver-1"]
            assert f"PID {driver.pid}" in view.output_title.text()
            assert f"driver-1 started, PID {driver.pid}" in view.output_text()
            assert view.stop_button.isEnabled() and not view.restart_button.isEnabled()
            assert window.summary() == "3 up · 0 half-open · 0 down"  # components agree

    qt_loop.run(scenario())


def test_a_killed_driver_shows_as_crashed_and_comes_back_with_restart(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            view = console.window.agents_view
            assert view is not None
            view.spawn("driver")
            await wait_until(lambda: console.state_of("driver-1") == "up", "driver-1 up")
            agent = console.supervisor.agents["driver-1"]
            first_pid = agent.pid
            assert first_pid is not None
            view.select("driver-1")
            os.kill(first_pid, signal.SIGKILL)
            row = view.model.row_of("driver-1")
            assert row is not None
            await wait_until(lambda: agent.state is AgentState.CRASHED, "seeing the crash")
            assert view.model.data(view.model.index(row, PROCESS)) == \
                "crashed (killed by SIGKILL)"
            await wait_until(lambda: console.state_of("driver-1") == "down", "driver-1 down")
            assert "driver-1 crashed: killed by SIGKILL" in view.output_text()
            assert view.restart_button.isEnabled() and not view.stop_button.isEnabled()

            view.restart_button.click()  # no token needed: it kept its credentials
            await wait_until(lambda: console.state_of("driver-1") == "up", "driver-1 up again")
            assert agent.state is AgentState.RUNNING and agent.pid != first_pid
            assert agent.restarts == 1
            assert view.model.data(view.model.index(row, PID)) == str(agent.pid)

            view.stop_button.click()
            await wait_until(lambda: agent.state is AgentState.STOPPED, "stopped")
            assert view.model.data(view.model.index(row, PROCESS)).startswith("stopped")

    qt_loop.run(scenario())


def test_on_exit_the_operator_chooses_to_stop_or_keep_spawned_agents(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window, supervisor = console.window, console.supervisor
            agent = await supervisor.spawn("engine")
            process = agent.process
            assert process is not None

            window.close()  # asks instead of closing, without a nested event loop
            assert window.isVisible() and not console.closed.done()
            box = window.exit_box
            assert box is not None and box.isVisible()
            assert "1 agent started from this console is still running" in box.text()
            assert box.defaultButton() is window.stop_agents_button  # stop is the default
            box.button(QMessageBox.StandardButton.Cancel).click()
            await wait_until(lambda: window.exit_box is None, "the question answered")
            assert window.isVisible() and not console.closed.done()

            window.close()
            assert window.exit_box is not None
            window.keep_agents_button.click()
            await wait_until(lambda: console.closed.done(), "the window closed")
            assert window.keep_agents
            kept = await _close_like_the_app(supervisor, window.keep_agents)
            assert [a.name for a in kept] == ["engine-1"]
            assert process.poll() is None  # still running after the console let go
            assert agent.state is AgentState.KEPT
            process.kill()
            process.wait(5)

    qt_loop.run(scenario())


async def _close_like_the_app(supervisor: object, keep: bool) -> list:  # type: ignore[type-arg]
    from backend.supervisor import Supervisor

    assert isinstance(supervisor, Supervisor)
    kept = supervisor.running() if keep else []
    await supervisor.close(keep=keep)
    return kept


def test_custom_drivers_host_the_chosen_instances_and_keep_them_across_a_restart(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            view = console.window.agents_view
            assert view is not None
            console.window.show_tab(view)
            view.custom_drivers_button.click()
            dialog = view.drivers_dialog
            assert dialog is not None and dialog.isVisible() and not dialog.isModal()
            dialog.count.setValue(2)
            assert dialog.names_label.text() == "driver-1, driver-2"
            # Nothing chosen: the dialog says the default rack is used.
            assert "default rack NAME.eq (eq), NAME.comp (compressor), NAME.tape (saturator)" \
                in dialog.hint.text()
            # Every model is offered with its one-line description.
            offered = [dialog.models.item(i).text() for i in range(dialog.models.count())]
            assert "compressor — feed-forward stereo-linked compressor" in offered
            assert len(offered) == 4

            dialog.same_rack.click()  # a rack per driver
            assert dialog.driver_combo.isEnabled()
            _add(dialog, "compressor")
            _add(dialog, "eq")
            assert _ids(dialog) == ["driver-1.comp", "driver-1.eq"]
            dialog.set_instance_id(1, "driver-1.air")  # typed over the generated id
            dialog.driver_combo.setCurrentIndex(1)
            assert _ids(dialog) == []
            _add(dialog, "gain")
            _add(dialog, "gain")
            assert _ids(dialog) == ["driver-2.gain", "driver-2.gain2"]
            dialog.set_instance_id(1, "driver-1.comp")  # clashes with driver-1's
            assert dialog.problem.isVisible() and "used on both driver-1 and driver-2" in \
                dialog.problem.text()
            assert not dialog.spawn_button.isEnabled()
            dialog.rack.selectRow(1)
            dialog.remove_button.click()
            dialog.set_instance_id(0, "driver-2.trim")
            assert not dialog.problem.isVisible() and dialog.spawn_button.isEnabled()
            dialog.spawn_button.click()
            assert not dialog.isVisible()

            await wait_until(lambda: console.state_of("driver-1") == "up"
                             and console.state_of("driver-2") == "up", "both drivers up")
            await wait_until(lambda: _announced(console, "driver-1")
                             == ["driver-1.air", "driver-1.comp"]
                             and _announced(console, "driver-2") == ["driver-2.trim"],
                             "their instances announced at the hub")
            model = view.model
            row = model.row_of("driver-1")
            assert row is not None
            await wait_until(lambda: model.data(model.index(row, HOSTS))
                             == "driver-1.air, driver-1.comp", "the hosts column")
            config = console.supervisor.agents["driver-1"].data_dir / CONFIG_FILE
            assert json.loads(config.read_text())["instances"][1] == {
                "id": "driver-1.air", "model": "eq", "params": {}}

            # Crashed and restarted: the same config, the same instances.
            agent = console.supervisor.agents["driver-2"]
            first_pid = agent.pid
            view.select("driver-2")
            os.kill(first_pid or 0, signal.SIGKILL)
            await wait_until(lambda: agent.state is AgentState.CRASHED, "the crash seen")
            assert view.restart_button.isEnabled()
            restarted_at = time.time()
            view.restart_button.click()
            await wait_until(lambda: console.state_of("driver-2") == "up"
                             and _reported_at(console, "driver-2") > restarted_at,
                             "driver-2 up again and announcing")
            assert agent.pid != first_pid
            assert _announced(console, "driver-2") == ["driver-2.trim"]

    qt_loop.run(scenario(), timeout=90)


def test_spawn_a_runner_with_labels_from_its_dialog(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            view = console.window.agents_view
            assert view is not None
            console.window.show_tab(view)
            view.spawn_runner_button.click()
            dialog = view.runner_dialog
            assert dialog is not None and dialog.isVisible() and not dialog.isModal()
            dialog.labels.setText("render, not ok!")
            assert dialog.problem.isVisible() and "label 'not ok!'" in dialog.problem.text()
            assert not dialog.spawn_button.isEnabled()
            dialog.labels.setText("render, fast-disk")
            assert dialog.spawn_button.isEnabled()
            dialog.spawn_button.click()
            await wait_until(lambda: console.state_of("runner-1") == "up", "runner-1 up")
            model = view.model
            row = model.row_of("runner-1")
            assert row is not None
            assert model.data(model.index(row, 1)) == "runner"
            await wait_until(lambda: model.data(model.index(row, HOSTS))
                             == "labels: render, fast-disk", "its labels at the hub")
            runner = console.supervisor.agents["runner-1"]
            assert runner.state is AgentState.RUNNING
            await console.supervisor.stop("runner-1")  # signs off cleanly
            assert runner.state is AgentState.STOPPED and runner.exit_code == 0

    qt_loop.run(scenario(), timeout=90)


def _add(dialog: DriversDialog, model: str) -> None:
    """Select a model in the list and press Add, as the operator does."""
    for i in range(dialog.models.count()):
        item = dialog.models.item(i)
        if item.data(Qt.ItemDataRole.UserRole) == model:
            dialog.models.setCurrentItem(item)
            dialog.add_button.click()
            return
    raise AssertionError(f"model {model} not offered")


def _ids(dialog: DriversDialog) -> list[str]:
    return [dialog.rack.item(r, 0).text() for r in range(dialog.rack.rowCount())]


def _component(console: Console, name: str) -> dict[str, Any]:
    for component in console.bridge.snapshot():
        if component["id"] == name:
            return component
    return {}


def _announced(console: Console, name: str) -> list[str]:
    report = _component(console, name).get("report") or {}
    return sorted(str(i["id"]) for i in report.get("instances") or [])


def _reported_at(console: Console, name: str) -> float:
    report = _component(console, name).get("report") or {}
    return float(report.get("at") or 0.0)
