"""The console attached to a REMOTE hub: a real ``controlroom --headless`` process.

The window runs over :class:`ui.core.bridge.HubBridge`, as over its own hub, and nothing is
embedded: components, health, tasks and events come over HTTP and SSE, the task's stream over its
WebSocket, renders are downloaded, and an engine spawned from the Agents tab joins the
remote hub. The hub is hung (SIGSTOP), killed and started again under the open window,
which says so, stays responsive, and resumes the event stream with nothing lost or twice.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app import desktop
from app.console import open_console, open_remote_console
from backend.audio.output import Device
from backend.client import AttachError, probe
from backend.host import HostSettings
from tests.processes import HubProcess, running_hub
from tests.ui.harness import QtLoop, wait_until
from ui.core.coroutines import CoroutineRunner
from ui.shell.hub_choice import HubChoice, HubHistory
from ui.shell.main_window import MainWindow
from ui.tasks.meters import DEVICE_KEY, MetersPanel

#: An engine-only task (a dynamic EQ, no drivers), 2 s long: quick to render and play.
SPEC = {
    "sample_rate": 48000,
    "block_size": 1024,
    "duration_s": 2,
    "tracks": [{"id": "tone", "source": {"type": "tone", "freq_hz": 440, "level_dbfs": -12,
                                         "duration_s": 2}, "chain": ["eq"]}],
    "instances": {"eq": {"model": "eq", "params": {"bands": [
        {"type": "peaking", "freq_hz": 1000, "gain_db": 3, "q": 1.0}]}}},
    "window": {"start": "2026-01-01T00:00:00Z", "end": "2036-01-01T00:00:00Z"},
}


@pytest.fixture
def remote_hub(tmp_path: Path) -> Any:
    yield from running_hub(tmp_path / "remote-hub")


async def _loop_lag(seconds: float) -> float:
    """The longest the loop (and so the GUI) was kept from a 20 ms timer, over ``seconds``."""
    worst, end = 0.0, time.monotonic() + seconds
    while time.monotonic() < end:
        before = time.monotonic()
        await asyncio.sleep(0.02)
        worst = max(worst, time.monotonic() - before - 0.02)
    return worst


def test_the_console_works_a_remote_hub_and_survives_it_hanging_dying_and_returning(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path, remote_hub: HubProcess,
) -> None:
    async def scenario() -> None:
        async with open_remote_console(remote_hub.url, remote_hub.token, tmp_path / "console",
                                       ui_settings) as console:
            window, bridge = console.window, console.bridge
            seen: list[dict[str, Any]] = []
            bridge.event_received.connect(seen.append)
            assert window.header.text().startswith("<b>Remote hub</b>")
            assert remote_hub.url in window.header.text()
            assert "leaves that hub running" in window.header.toolTip()
            assert window.address_label.text() == f"Remote hub {remote_hub.url}"
            assert "on the hub's machine" in window.empty_state.text()
            await wait_until(lambda: any(e["type"] == "hub.started" for e in seen),
                             "the hub's history replayed")

            # An engine spawned from the Agents tab enrolls with the REMOTE hub and is up.
            agents = window.agents_view
            assert agents is not None
            window.show_tab(agents)
            agents.spawn_engine_button.click()
            await wait_until(lambda: console.state_of("engine-1") == "up", "engine-1 up")
            assert remote_hub.components()["engine-1"]["state"] == "up"
            assert (tmp_path / "console" / "agents" / "engine-1" / "credentials.json").exists()
            # Health keeps updating: the snapshot's last-seen time moves on.
            first = next(c for c in window.model.components() if c["id"] == "engine-1")
            await wait_until(lambda: next(c for c in window.model.components()
                                          if c["id"] == "engine-1")["last_seen"]
                             > first["last_seen"], "a newer health check shown")
            assert window.summary() == "1 up · 0 half-open · 0 down"

            # Reserve through the editor, render on the remote hub, fetch the file here.
            view = window.tasks_view
            window.show_tab(view)
            view.editor.set_text(json.dumps(SPEC, indent=2))
            view.reserve_button.click()
            await wait_until(lambda: (view.selected_task() or {}).get("state") == "ready",
                             "the task reserved and ready")
            task_id = str((view.selected_task() or {})["id"])
            panel = view.panel
            panel.render_button.click()
            await wait_until(lambda: panel.render_dialog is not None
                             and panel.render_dialog.isVisible(), "the render dialog open")
            panel.render_dialog.render_button.click()  # type: ignore[union-attr]
            await wait_until(lambda: (view.selected_task() or {}).get("state") == "ready"
                             and bool((view.selected_task() or {}).get("renders")),
                             "the render done", within=40)
            render = (view.selected_task() or {})["renders"][-1]
            assert render["state"] == "done" and panel.progress_label.text() == "done"
            assert panel.save_button.isEnabled() and panel.open_folder_button.isEnabled()
            saving = panel.save_render_to(tmp_path / "copy.wav")
            assert saving is not None
            assert await saving == tmp_path / "copy.wav"
            fetching = panel.fetch_selected_render()
            assert fetching is not None
            local = await fetching
            assert local.is_relative_to(bridge.render_cache)
            on_hub = remote_hub.data_dir / "renders" / task_id / render["file"]
            assert local.stat().st_size == render["bytes"] == on_hub.stat().st_size
            assert local.read_bytes() == on_hub.read_bytes()
            assert (tmp_path / "copy.wav").read_bytes() == on_hub.read_bytes()

            # Play: the meters move from the hub's WebSocket stream.
            meters = panel.meters
            panel.play_button.click()
            await wait_until(lambda: meters.readings > 5 and meters.audio_blocks > 5,
                             "meters and audio from the remote stream")

            # The hub hangs: said in the status bar within a few seconds; the GUI lives on.
            remote_hub.send(signal.SIGSTOP)
            await wait_until(lambda: "not answering" in window.address_label.text(),
                             "the hub shown as not answering", within=15)
            assert not bridge.connected
            assert "is the hub running?" in window.address_label.toolTip()
            assert await _loop_lag(1.0) < 0.5  # not frozen
            window.show_tab(window.tabs.widget(0))
            QTest.keyClick(window.event_log, Qt.Key.Key_End)  # still takes input
            assert window.tabs.currentIndex() == 0

            # ... dies, and comes back on the same port with the same data dir.
            remote_hub.send(signal.SIGKILL)
            await asyncio.to_thread(remote_hub.proc.wait, 10)  # type: ignore[union-attr]
            starts = sum(e["type"] == "hub.started" for e in seen)
            await asyncio.to_thread(remote_hub.start)
            await wait_until(lambda: window.address_label.text()
                             == f"Remote hub {remote_hub.url}", "the hub answering again")
            await wait_until(lambda: sum(e["type"] == "hub.started" for e in seen) > starts,
                             "the restarted hub's events")
            await wait_until(lambda: console.state_of("engine-1") == "up",
                             "engine-1 back up on the restarted hub")
            assert any("answers again" in line for line in window.event_log.lines())

            # Every event the hub stored since the first one shown, once, in order.
            stored = await asyncio.to_thread(remote_hub.events, seen[0]["id"] - 1)
            ids = [e["id"] for e in seen]
            assert ids == sorted(set(ids)), "an event arrived twice or out of order"
            assert ids == [e["id"] for e in stored][:len(ids)]
            assert len(ids) >= len(stored) - 5  # the newest few may still be on the way

        # Closing the console leaves the remote hub running.
        assert remote_hub.proc is not None and remote_hub.proc.poll() is None
        async with httpx.AsyncClient() as client:
            health = await client.get(f"{remote_hub.url}/api/v1/health")
        assert health.json()["status"] == "ok"

    qt_loop.run(scenario(), timeout=100)


def test_a_wrong_token_or_a_dead_address_is_said_plainly(
    qt_loop: QtLoop, remote_hub: HubProcess,
) -> None:
    async def scenario() -> None:
        with pytest.raises(AttachError) as wrong:
            await probe(remote_hub.url, "not-the-token")
        assert "refused the operator token" in wrong.value.message
        assert "DATA/admin.token on the hub's machine" in wrong.value.message

        with pytest.raises(AttachError) as dead:
            await probe("http://127.0.0.1:9", remote_hub.token)
        assert dead.value.message.startswith("cannot reach http://127.0.0.1:9: ")
        assert "is the hub running? Start it" in dead.value.message

        with pytest.raises(AttachError) as foreign:  # the hub's node, not a hub
            await probe(f"{remote_hub.url}/node/v1", remote_hub.token)
        assert "is not a Control Room hub" in foreign.value.message

        info = await probe(f"ws://{remote_hub.url.removeprefix('http://')}/api/v1/",
                           remote_hub.token)  # as an agent's --hub is often written
        assert info.url == remote_hub.url and info.health.misses == 3

    qt_loop.run(scenario())


def test_connect_to_hub_checks_the_token_then_reopens_the_console_on_that_hub(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path, remote_hub: HubProcess,
) -> None:
    """File ▸ Connect to Hub… from an embedded console; ``app.desktop`` switches in-process."""
    token_file = tmp_path / "hub.token"
    token_file.write_text(remote_hub.token + "\n")

    async def scenario() -> None:
        settings = HostSettings(data_dir=tmp_path / "local", port=0)
        main = asyncio.ensure_future(desktop.main(settings, HubChoice(), ui_settings))

        def window() -> MainWindow | None:
            shown = [w for w in QApplication.topLevelWidgets()
                     if isinstance(w, MainWindow) and w.isVisible()]
            return shown[0] if shown else None

        await wait_until(lambda: window() is not None, "the embedded console open")
        embedded = window()
        assert embedded is not None and not embedded.bridge.is_remote
        dialog = embedded.hub_menu.open_dialog()
        assert dialog.isVisible() and not dialog.isModal()

        # A wrong token: said in the dialog, which keeps what was typed.
        dialog.url.setCurrentText(remote_hub.url)
        dialog.use_token.setChecked(True)
        QTest.keyClicks(dialog.token, "wrong")
        dialog.connect_button.click()
        await wait_until(lambda: "refused the operator token" in dialog.status.text(),
                         "the refusal shown")
        assert dialog.isVisible() and dialog.token.text() == "wrong"
        assert embedded.switch_to is None

        # The token file: checked, then the console reopens attached to the remote hub.
        dialog.use_file.setChecked(True)
        dialog.token_file.setText(str(token_file))
        dialog.connect_button.click()
        await wait_until(lambda: (w := window()) is not None and w is not embedded
                         and w.bridge.is_remote, "the console reopened on the remote hub")
        remote = window()
        assert remote is not None and remote.bridge.base_url == remote_hub.url
        history = HubHistory(ui_settings)
        assert history.last_mode() == "remote" and history.recent() == [remote_hub.url]
        assert history.token_file_for(remote_hub.url) == str(token_file)
        assert remote_hub.token not in (tmp_path / "ui.ini").read_text()  # never saved

        # Recent Hubs offers the way back to the embedded hub; that switch needs no token.
        remote.hub_menu.recent_menu.aboutToShow.emit()
        own, *_rest = remote.hub_menu.recent_menu.actions()
        assert own.isEnabled() and not own.isChecked()
        own.trigger()
        await wait_until(lambda: (w := window()) is not None and not w.bridge.is_remote,
                         "the console back on its own hub")
        assert HubHistory(ui_settings).last_mode() == "embedded"
        last = window()
        assert last is not None
        last.close()
        assert await asyncio.wait_for(main, 20) == 0
        assert remote_hub.proc is not None and remote_hub.proc.poll() is None

    qt_loop.run(scenario(), timeout=90)


def test_the_output_device_is_remembered_by_name(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    """Device indexes change between starts; the name is what is remembered."""
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            meters = console.window.tasks_view.panel.meters
            assert meters.settings is ui_settings
            combo = meters.device_combo
            # Device lists as sounddevice reports them (this machine has no sound card).
            meters._on_devices([Device(0, "Built-in Audio", 2, 48000.0),
                                Device(3, "USB Interface", 8, 96000.0)])
            assert combo.currentText() == "System default output"
            combo.setFocus()
            QTest.keyClick(combo, Qt.Key.Key_Down)
            QTest.keyClick(combo, Qt.Key.Key_Down)  # the operator picks the USB interface
            assert combo.currentText() == "USB Interface (8 ch)"
            assert meters.playback.device == 3
            assert ui_settings.value(DEVICE_KEY) == "USB Interface"

        # Next start: the same name at another index is chosen again ...
        again = MetersPanel(console.bridge, CoroutineRunner(), settings=ui_settings)
        again._on_devices([Device(1, "USB Interface", 8, 96000.0),
                           Device(2, "Built-in Audio", 2, 48000.0)])
        assert again.device_combo.currentText() == "USB Interface (8 ch)"
        assert again.playback.device == 1
        # ... and when it is unplugged, the default is used and the operator is told.
        unplugged = MetersPanel(console.bridge, CoroutineRunner(), settings=ui_settings)
        unplugged._on_devices([Device(0, "Built-in Audio", 2, 48000.0)])
        assert unplugged.device_combo.currentText() == "System default output"
        assert unplugged.playback.device is None
        assert "“USB Interface” is not connected" in unplugged.sink_label.text()
        assert ui_settings.value(DEVICE_KEY) == "USB Interface"  # still wanted next time
        again.deleteLater()
        unplugged.deleteLater()

    qt_loop.run(scenario())
