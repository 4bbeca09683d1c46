"""A console attached with a VIEWER token: it reads everything and offers no change.

The hub is a real ``controlroom --headless`` process and the viewer token a real named
token (``POST /api/v1/tokens``). With it, the console lists the components and tasks and
follows them, but every control that would change state is greyed out, saying why, and
stays so when the view's own rules would enable it (a ready task, a selected flow); the
title, header and status bar say "read-only". The same controls with the operator token
are enabled. A hub serving TLS gets the same console, and the commands it shows for new
agents carry ``--pin`` and the token in the environment, which the real
``controlroom runner register`` accepts.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

from app.console import RemoteConsole, open_remote_console
from backend.client import TOKEN_ENV
from tests.processes import HubProcess, running_hub
from tests.ui.harness import ROOT, Agents, QtLoop, wait_until
from ui.core.access import Access
from ui.shell.main_window import transport_text

#: An engine-only task (a dynamic EQ, no drivers): ready as soon as engine-1 takes it.
SPEC = {
    "sample_rate": 48000, "block_size": 1024, "duration_s": 2,
    "tracks": [{"id": "tone", "source": {"type": "tone", "freq_hz": 440, "level_dbfs": -12,
                                         "duration_s": 2}, "chain": ["eq"]}],
    "instances": {"eq": {"model": "eq", "params": {"bands": [
        {"type": "peaking", "freq_hz": 1000, "gain_db": 3, "q": 1.0}]}}},
    "window": {"start": "2026-01-01T00:00:00Z", "end": "2036-01-01T00:00:00Z"},
}
READ_ONLY = Access("viewer").reason


@pytest.fixture
def plain_hub(tmp_path: Path) -> Iterator[HubProcess]:
    yield from running_hub(tmp_path / "hub")


@pytest.fixture
def tls_hub(tmp_path: Path) -> Iterator[HubProcess]:
    """On loopback, ``--tls on`` serves HTTPS with the hub's self-signed certificate."""
    yield from running_hub(tmp_path / "tls-hub", "--tls", "on")


def viewer_token(hub: HubProcess, name: str = "wall") -> str:
    answer = hub.client.post(f"{hub.url}/api/v1/tokens", json={"name": name, "kind": "viewer"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def state_changing(console: RemoteConsole) -> dict[str, QWidget]:
    """A representative control of every tab that changes state (or needs an enrollment)."""
    window = console.window
    agents, tasks, runners, flows = (window.agents_view, window.tasks_view,
                                     window.runners_view, window.flows_view)
    assert agents is not None
    return {
        "Start a local studio": window.empty_state.studio_button,
        "Add a remote agent…": window.empty_state.remote_button,
        "Apply (stored config)": window.details.stored.apply_button,
        "Spawn engine": agents.spawn_engine_button,
        "Spawn drivers": agents.spawn_drivers_button,
        "Custom drivers…": agents.custom_drivers_button,
        "Spawn runner…": agents.spawn_runner_button,
        "Spawn node": agents.spawn_node_button,
        "Restart (agent)": agents.restart_button,
        "Stop (agent)": agents.stop_button,
        "Reserve": tasks.reserve_button,
        "Try the demo": tasks.try_demo_button,
        "Play": tasks.panel.play_button,
        "Stop (task)": tasks.panel.stop_button,
        "Render": tasks.panel.render_button,
        "Cancel render": tasks.panel.cancel_button,
        "Release": tasks.panel.release_button,
        "Add runner…": runners.add_button,
        "Revoke…": runners.revoke_button,
        "Submit job…": runners.jobs.submit_button,
        "Cancel job": runners.jobs.cancel_button,
        "Launch (flow)": flows.launch_button,
        "Flow inputs": flows.inputs,
        "Cancel run": flows.cancel_button,
        "Submit (lock)": flows.lock_panel.submit_button,
    }


async def _task_ready(console: RemoteConsole) -> dict[str, Any]:
    """Select the hub's one task in the Tasks tab once it is ready."""
    view = console.window.tasks_view
    console.window.show_tab(view)
    await wait_until(lambda: any(t.get("state") == "ready" for t in view.model.tasks()),
                     "the task listed as ready")
    task = next(t for t in view.model.tasks() if t.get("state") == "ready")
    assert view.select(str(task["id"]))
    return task


async def _a_flow_selected(console: RemoteConsole) -> None:
    flows = console.window.flows_view
    console.window.show_tab(flows)
    await wait_until(lambda: any(flows.select_flow(str(node["name"]), "hello")
                                 for node in flows.catalog), "the hello flow listed")


def test_a_viewer_token_reads_everything_and_can_change_nothing(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path, plain_hub: HubProcess,
    agents: Agents,
) -> None:
    hub = plain_hub
    token = viewer_token(hub)

    async def as_viewer() -> None:
        async with open_remote_console(hub.url, token, tmp_path / "wall", ui_settings) as console:
            window, bridge = console.window, console.bridge
            assert bridge.info.access == "viewer" and bridge.access.read_only
            controls = state_changing(console)
            # Said where it is always seen: the title, the header, the status bar.
            assert window.windowTitle() == "Control Room — read-only (viewer token)"
            assert window.header.text().startswith(
                "<b style='color:#9a6700'>Read-only (viewer token)</b>")
            assert window.access_label.isVisible()
            assert window.access_label.text() == "Read-only (viewer token)"
            assert window.access_label.toolTip().startswith(READ_ONLY)
            about = window.about_text()
            assert "<b>Access</b> read-only (viewer token)" in about
            assert "<b>Connection</b> plain HTTP (loopback only)" in about

            # An empty hub: the help says an operator adds components; its buttons are off.
            assert window.empty_state.isVisible()
            assert "cannot add any itself" in window.empty_state.text()

            # Reading works: an agent enrolled by an operator appears, up, with its config.
            agents.start(hub.url, "engine", "engine-1", hub.enroll("engine"))
            await wait_until(lambda: console.state_of("engine-1") == "up", "engine-1 up")
            assert window.select_component("engine-1")
            stored = window.details.stored
            await wait_until(lambda: stored.baseline is not None, "the stored config read")
            assert stored.editor.isReadOnly()
            assert window.details.stored_title.text() == "Stored overrides (read-only)"
            QTest.keyClicks(stored.editor, '{"block_size": 256}')  # typing changes nothing
            assert not stored.dirty()

            # A task reserved by the operator: listed, selectable, its stream followed ...
            reserved = hub.client.post(f"{hub.url}/api/v1/tasks", json=SPEC)
            assert reserved.status_code in (200, 201), reserved.text
            task = await _task_ready(console)
            assert "play" in task["commands"]  # the hub would play it for an operator ...
            panel = window.tasks_view.panel
            assert panel.meters.task_id == task["id"]
            QTest.keyClick(window.tasks_view.table, Qt.Key.Key_Space)  # ... not for a viewer
            panel.toggle_play()
            window.tasks_view.editor.set_text(json.dumps(SPEC))  # a valid spec: no Reserve
            assert window.tasks_view.editor.validate() is not None
            boxes = panel.instances.boxes
            assert boxes and not any(row.editor.isEnabled()
                                     for box in boxes.values() for row in box.all_rows())
            assert panel.instances.note.text().startswith(READ_ONLY)

            # A flow selected: still no Launch.
            await _a_flow_selected(console)

            # Every state-changing control: greyed out, the reason first in its tooltip.
            for what, widget in controls.items():
                assert not widget.isEnabled(), f"{what} is enabled for a viewer"
                assert widget.toolTip().startswith(READ_ONLY), f"{what}: {widget.toolTip()}"
            assert (hub.client.get(f"{hub.url}/api/v1/tasks/{task['id']}").json()["state"]
                    == "ready"), "Space played the task"
            runners = window.runners_view
            window.show_tab(runners)
            await wait_until(lambda: runners._last_fetch > 0 and runners._refreshing is not None
                             and runners._refreshing.done(), "runners and jobs read")
            assert not runners.status.isVisible()  # the reads were not refused

    qt_loop.run(as_viewer(), timeout=90)

    async def as_operator() -> None:
        async with open_remote_console(hub.url, hub.token, tmp_path / "operator",
                                       ui_settings) as console:
            window = console.window
            assert not console.bridge.access.read_only
            assert window.windowTitle() == "Control Room"
            assert not window.access_label.isVisible()
            assert "Read-only" not in window.header.text()
            await wait_until(lambda: console.state_of("engine-1") == "up", "engine-1 up")
            assert window.select_component("engine-1")
            stored = window.details.stored
            await wait_until(lambda: stored.baseline is not None, "the stored config read")
            assert not stored.editor.isReadOnly()
            await _task_ready(console)
            await _a_flow_selected(console)
            controls = state_changing(console)
            for what in ("Start a local studio", "Add a remote agent…", "Spawn engine",
                         "Spawn drivers", "Custom drivers…", "Spawn runner…", "Spawn node",
                         "Try the demo", "Play", "Render", "Release", "Add runner…",
                         "Submit job…", "Launch (flow)", "Flow inputs"):
                assert controls[what].isEnabled(), f"{what} is disabled for an operator"
            for what, widget in controls.items():
                assert not widget.toolTip().startswith("Read-only"), what
            assert window.tasks_view.panel.instances.note.text().startswith("Changes are sent")

    qt_loop.run(as_operator(), timeout=60)


def test_over_tls_about_names_the_certificate_and_commands_carry_the_pin(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path, tls_hub: HubProcess,
) -> None:
    hub = tls_hub
    assert hub.url.startswith("https://127.0.0.1:")
    registered = tmp_path / "runner-1"

    async def scenario() -> None:
        async with open_remote_console(hub.url, hub.token, tmp_path / "console", ui_settings,
                                       pin=hub.pin) as console:
            window = console.window
            assert console.bridge.info.pin == hub.pin
            assert f"<b>Connection</b> HTTPS, certificate {hub.pin}" in window.about_text()

            # Add a remote agent…: --pin, and the token in the environment.
            dialog = window.empty_state.open_remote_dialog()
            _enroll, agent = dialog.commands()
            assert agent == (f"CONTROLROOM_TOKEN=TOKEN controlroom agent engine --hub "
                             f"{hub.url} --name engine-1 --pin {hub.pin}")
            dialog.close()

            # Add runner…: the enrollment's pin; the command as shown registers for real.
            runners = window.runners_view
            window.show_tab(runners)
            add = runners.open_add_runner()
            await wait_until(lambda: add.enrollment is not None, "a token")
            assert add.enrollment is not None and add.enrollment["pin"] == hub.pin
            token = str(add.enrollment["token"])
            argv = shlex.split(add.command_text(0))
            assert argv == [f"{TOKEN_ENV}={token}", "controlroom", "runner", "register",
                            "--hub", hub.url, "--name", "runner-1", "--pin", hub.pin]
            assert "--token" not in argv
            env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
            env[TOKEN_ENV] = token
            register = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "app.main", *argv[2:], "--data-dir", str(registered)],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            assert register.returncode == 0, register.stderr
            await wait_until(lambda: "is registered" in add.joined_label.text()
                             or "has joined" in add.joined_label.text(),
                             "the dialog saying runner-1 registered")
            add.close()

    qt_loop.run(scenario(), timeout=90)


def test_the_transport_in_words() -> None:
    """What Help ▸ About says of the connection to the hub."""
    assert transport_text("https://studio:8750", "sha256:ab") == "HTTPS, certificate sha256:ab"
    assert transport_text("http://127.0.0.1:8750", "") == "plain HTTP (loopback only)"
    assert transport_text("http://[::1]:8750", "") == "plain HTTP (loopback only)"
    assert transport_text("http://localhost:8750", "") == "plain HTTP (loopback only)"
    assert transport_text("http://studio:8750", "") == "plain HTTP (not encrypted)"
