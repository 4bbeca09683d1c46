"""A first run needs no terminal: Start a local studio, then Try the demo.

Real processes: the supervisor spawns an engine, two instance drivers and a runner of
this program, they enroll with the embedded hub on their own, and the demo task is
reserved and played through the window's buttons, meters moving.
"""

from __future__ import annotations

from pathlib import Path

import psutil
from PySide6.QtCore import QSettings

from app.console import open_console
from tests.ui.harness import QtLoop, wait_until


def test_start_a_local_studio_then_try_the_demo(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window = console.window
            empty = window.empty_state
            await wait_until(lambda: empty.isVisible(), "the empty state shown")
            empty.studio_button.click()
            assert not empty.studio_button.isEnabled()  # once is enough
            names = ("engine-1", "driver-1", "driver-2", "runner-1")
            await wait_until(lambda: all(console.state_of(n) == "up" for n in names),
                             "the local studio up", within=60)
            assert window.tree.isVisible() and not empty.isVisible()
            assert any("Try the demo" in line for line in window.event_log.lines())
            # each enrolled with a one-time token, none of which any local user could read
            # from the process table (it came in the environment)
            supervisor = window.supervisor
            assert supervisor is not None
            for agent in supervisor.agents.values():
                assert agent.pid is not None
                argv = psutil.Process(agent.pid).cmdline()
                assert "--token" not in argv and not any(a.startswith("cre_") for a in argv)

            tasks = window.tasks_view
            window.show_tab(tasks)
            tasks.try_demo_button.click()
            await wait_until(lambda: (tasks.selected_task() or {}).get("state") == "playing",
                             "the demo task playing", within=30)
            meters = tasks.panel.meters
            await wait_until(lambda: meters.readings > 5, "the meters moving", within=15)
            assert tasks.try_demo_button.isEnabled()
            assert '"tracks"' in tasks.editor.text()  # what was reserved is shown
            await console.bridge.stop_task(str(tasks.selected_task()["id"]))  # type: ignore[index]

    qt_loop.run(scenario())
