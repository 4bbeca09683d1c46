"""The main window over a real embedded hub, with real agent processes joining it.

Every scenario runs on the qasync loop, as the desktop app does (see ``harness.py``).
"""

from __future__ import annotations

import json
import platform
import signal
from pathlib import Path
from typing import Any

import httpx
import PySide6
import pytest
from PySide6.QtCore import QAbstractItemModel, QModelIndex, QSettings, QSize, Qt, qVersion
from PySide6.QtWidgets import QMessageBox

from app.console import open_console
from backend import __version__
from backend.host import Host, HostSettings, Upstream
from tests.ui.harness import Agents, QtLoop, exited, wait_until
from ui.components.model import COMPONENT, HEALTH, KIND, LAST_SEEN, ROUND_TRIP
from ui.shell.main_window import MainWindow


def test_with_no_components_the_window_explains_how_to_add_one(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window = console.window
            await wait_until(lambda: any("hub started" in line
                                         for line in window.event_log.lines()),
                             "showing the hub's start in the event log")
            assert window.windowTitle() == "Control Room"
            assert window.empty_state.isVisible() and not window.tree.isVisible()
            text = window.empty_state.text()
            assert "POST /api/v1/enrollments" in text
            assert window.empty_state.studio_button.isVisible()
            # Add a remote agent…: the two commands, for the kind picked.
            dialog = window.empty_state.open_remote_dialog()
            enroll, agent = dialog.commands()
            assert f"{console.base_url}/api/v1/enrollments" in enroll
            assert str(tmp_path / "hub" / "admin.token") in enroll
            # No token on a command line: the agent's in its environment, the operator's
            # on curl's standard input; no --pin, since this hub speaks plain HTTP.
            assert agent == (f"CONTROLROOM_TOKEN=TOKEN controlroom agent engine --hub "
                             f"{console.base_url} --name engine-1")
            assert "-H @-" in enroll and "Bearer $(cat" not in enroll
            dialog.kind.setCurrentText("runner")
            enroll, agent = dialog.commands()
            assert '"kind": "runner"' in enroll
            assert agent.startswith("CONTROLROOM_TOKEN=TOKEN controlroom agent runner")
            dialog.close()
            # Help ▸ About says where things are, and that the connection is not encrypted.
            about = window.about_text()
            assert console.base_url in about and str(tmp_path / "hub") in about
            assert "<b>Connection</b> plain HTTP (loopback only)" in about
            assert "<b>Access</b> operator" in about
            assert not window.access_label.isVisible()  # no read-only indicator
            assert window.summary() == "0 up · 0 half-open · 0 down"
            assert console.base_url in window.address_label.text()
            assert console.base_url in window.header.text() and "studio" in window.header.text()

    qt_loop.run(scenario())


def test_a_real_agent_appears_comes_up_then_goes_down_when_killed(
    qt_loop: QtLoop, ui_settings: QSettings, agents: Agents, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window, model = console.window, console.window.model
            engine = await agents.spawn(console, "engine", "engine-1")
            try:
                await wait_until(lambda: console.state_of("engine-1") == "up",
                                 "showing engine-1 up")
            except AssertionError:
                raise AssertionError(agents.stderr_of("engine-1")) from None
            health = model.index_of("engine-1", HEALTH)
            assert health.data() == "up"
            assert not health.data(Qt.ItemDataRole.DecorationRole).isNull()
            await wait_until(lambda: model.index_of("engine-1", ROUND_TRIP).data()
                             .endswith(" ms"), "showing a round trip")
            last_seen = model.index_of("engine-1", LAST_SEEN).data()
            assert last_seen == "just now" or last_seen.endswith(" s ago")
            assert window.tree.isVisible() and not window.empty_state.isVisible()
            assert window.summary() == "1 up · 0 half-open · 0 down"
            assert window.counts_label.accessibleName() == window.summary()
            assert "1 up" in window.counts_label.text()  # with a coloured dot before it
            log = "\n".join(window.event_log.lines())
            assert "engine-1 (engine) registered" in log
            assert "engine-1 half-open → up: answered a health check" in log

            # The selected component's merged config, as the hub holds it, read-only.
            assert window.select_component("engine-1")
            assert window.selected_component_id() == "engine-1"
            shown = json.loads(window.details.config.toPlainText())
            assert shown == console.host.hub.registry.components["engine-1"].config
            assert window.details.config.isReadOnly()
            assert window.details.facts["Health"].text().endswith("up")
            assert window.details.facts["Connection"].text() == "connected"

            engine.send_signal(signal.SIGKILL)
            await exited(engine)
            await wait_until(lambda: console.state_of("engine-1") == "down",
                             "showing engine-1 down", within=10)
            assert window.summary() == "0 up · 0 half-open · 1 down"
            await wait_until(lambda: window.details.facts["Connection"].text()
                             == "not connected", "showing the connection closed")
            assert "engine-1 up → down" in "\n".join(window.event_log.lines())
            tooltip = model.index_of("engine-1", HEALTH).data(Qt.ItemDataRole.ToolTipRole)
            assert tooltip.startswith("down: 3 missed checks in a row or connection closed")
            assert "up → down" in tooltip

    qt_loop.run(scenario())


def test_components_form_a_tree_by_kind_with_a_drivers_instances_under_it(
    qt_loop: QtLoop, ui_settings: QSettings, agents: Agents, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window, tree, proxy = console.window, console.window.tree, console.window.proxy
            await agents.spawn(console, "engine", "engine-1")
            await agents.spawn(console, "driver", "driver-1")
            await wait_until(lambda: console.state_of("engine-1") == "up"
                             and console.state_of("driver-1") == "up", "showing both up")
            # The driver's default rack, as it reported it to the hub, under the driver.
            await wait_until(lambda: proxy.rowCount(proxy.mapFromSource(
                window.model.index_of("driver-1"))) == 3, "the driver's instances")
            assert _shown(proxy) == [
                ["Engines (1)", ["engine-1"]],
                ["Instance drivers (1)", [["driver-1", [
                    "driver-1.comp", "driver-1.eq", "driver-1.tape"]]]],
            ]
            assert _shown(proxy, column=KIND)[1][1][0][1] == ["compressor", "eq", "saturator"]
            groups = [proxy.index(r, 0) for r in range(proxy.rowCount())]
            assert all(tree.isExpanded(g) for g in groups)  # groups open when they appear
            driver = proxy.mapFromSource(window.model.index_of("driver-1"))
            assert not tree.isExpanded(driver)  # instances one click away

            # Selecting an instance shows its driver (whose config declares it).
            assert window.select_component("driver-1", "driver-1.eq")
            assert tree.isExpanded(driver)
            assert window.selected_component_id() == "driver-1"
            assert "Instance driver-1.eq (eq) selected" in window.details.row_note.text()
            instance_health = window.model.index_of("driver-1.eq", HEALTH, owner="driver-1")
            assert instance_health.data() == "up"

            # Neither the selection nor the expansion moves as the snapshots come in.
            tree.collapse(groups[0])
            scroll = tree.verticalScrollBar().value()
            await _refreshes(window, 2)
            current = tree.currentIndex()
            assert current.data() == "driver-1.eq" and current.parent().data() == "driver-1"
            assert [i.data() for i in tree.selectionModel().selectedRows()] == ["driver-1.eq"]
            assert not tree.isExpanded(groups[0]) and tree.isExpanded(driver)
            assert tree.verticalScrollBar().value() == scroll
            assert window.summary() == "2 up · 0 half-open · 0 down"
            assert window.components_title.text() == "Components (2)"

            # Sorting a column sorts within each group; the groups keep their order.
            tree.sortByColumn(COMPONENT, Qt.SortOrder.DescendingOrder)
            assert _shown(proxy)[0][0] == "Engines (1)"
            assert _shown(proxy)[1][1][0][1] == ["driver-1.tape", "driver-1.eq", "driver-1.comp"]
            assert tree.currentIndex().data() == "driver-1.eq"  # still the one selected

    qt_loop.run(scenario())


def _shown(model: QAbstractItemModel, parent: QModelIndex | None = None,
           column: int = COMPONENT) -> list[Any]:
    """What the tree lists, as nested ``[row, [children]]`` of one column's text."""
    parent = parent if parent is not None else QModelIndex()
    out: list[Any] = []
    for row in range(model.rowCount(parent)):
        children = _shown(model, model.index(row, 0, parent), column)
        text = model.index(row, column, parent).data()
        out.append([text, children] if children else text)
    return out


async def _refreshes(window: MainWindow, count: int) -> None:
    """Wait for ``count`` snapshots from the bridge (it sends one a second)."""
    seen = 0

    def bump(_snapshot: object) -> None:
        nonlocal seen
        seen += 1

    window.bridge.components_changed.connect(bump)
    try:
        await wait_until(lambda: seen >= count, f"{count} refreshes", within=10)
    finally:
        window.bridge.components_changed.disconnect(bump)


def test_quit_closes_the_window_and_the_servers_stop_cleanly(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> str:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window = console.window
            window.resize(QSize(780, 520))  # inside offscreen's 800x600 screen
            window.tree.header().resizeSection(HEALTH, 157)  # the operator widens a column
            assert window.quit_action.shortcut().toString() == "Ctrl+Q"
            window.quit_action.trigger()
            assert console.closed.done() and not window.isVisible()
            base_url = console.base_url
        # open_console awaited the bridge and host.stop(): nothing listens any more.
        async with httpx.AsyncClient(timeout=2) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"{base_url}/api/v1/health")
        return base_url

    qt_loop.run(scenario())
    assert ui_settings.contains("MainWindow/geometry")

    async def reopened() -> tuple[QSize, int]:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            return console.window.size(), console.window.tree.header().sectionSize(HEALTH)

    assert qt_loop.run(reopened()) == (QSize(780, 520), 157)


def test_about_names_the_versions_and_does_not_block(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window = console.window
            text = window.about_text()
            for version in (__version__, qVersion(), PySide6.__version__,
                            platform.python_version()):
                assert version in text
            window.about_action.trigger()  # returns at once: the box is not modal
            boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
            assert len(boxes) == 1 and "Control Room" in boxes[0].text()
            boxes[0].close()

    qt_loop.run(scenario())


def test_when_live_updates_stop_the_window_says_the_view_is_stale(
    qt_loop: QtLoop, ui_settings: QSettings, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window = console.window
            assert not window.stale_label.isVisible()
            console.bridge.failed.emit("OperationalError: database is locked")
            assert window.stale_label.isVisible()
            assert "the view is stale" in window.stale_label.text()
            assert "Live updates stopped" in window.event_log.lines()[-1]

    qt_loop.run(scenario())


def test_a_hub_that_joins_this_one_is_listed_with_the_components_it_reports(
    qt_loop: QtLoop, ui_settings: QSettings, agents: Agents, tmp_path: Path,
) -> None:
    """Orchestrated boot: a studio hub registers with the console's hub as kind ``hub``
    and reports its own components, which the tree shows under it."""

    async def scenario() -> None:
        async with open_console(tmp_path / "hub", ui_settings) as console:
            window, proxy = console.window, console.window.proxy
            token = await agents.enroll(console, "hub")
            studio = Host(HostSettings(data_dir=tmp_path / "studio-b", port=0,
                                       upstream=Upstream(console.base_url, "studio-b", token)))
            await studio.start()
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.post(
                        f"{studio.base_url}/api/v1/enrollments", json={"kind": "engine"},
                        headers={"Authorization": f"Bearer {studio.hub.operator_token}"})
                agents.start(studio.base_url, "engine", "engine-b1", response.json()["token"])
                await wait_until(lambda: console.state_of("studio-b") == "up",
                                 "the studio hub up")
                await wait_until(
                    lambda: window.model.index_of("engine-b1", HEALTH, owner="studio-b")
                    .data() == "up", "the studio's engine reported up")
                assert _shown(proxy) == [["Hub / cloud (1)", [["studio-b", ["engine-b1"]]]]]
                assert window.summary() == "1 up · 0 half-open · 0 down"  # its own only
                assert window.select_component("studio-b", "engine-b1")
                assert window.selected_component_id() == "studio-b"
                assert "a component this hub reports" in window.details.row_note.text()
            finally:
                await studio.stop()

    qt_loop.run(scenario(), timeout=90)
