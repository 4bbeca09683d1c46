"""Agents on this machine: spawned from the Agents tab as real processes, supervised.

Every scenario runs on the qasync loop with the real embedded hub (see ``harness.py``).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from app.supervisor import AgentState
from tests.ui.harness import QtLoop, open_console, wait_until
from ui.agents_view import HEALTH, PID, PROCESS


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
    from app.supervisor import Supervisor

    assert isinstance(supervisor, Supervisor)
    kept = supervisor.running() if keep else []
    await supervisor.close(keep=keep)
    return kept
