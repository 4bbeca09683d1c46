"""The console's main window: every registered component and its health, live.

It is a view over a :class:`ui.core.bridge.HubBridge` and nothing else: the bridge's
snapshots feed the components tree (through :class:`ui.components.model.ComponentsModel`) and the
selected one's details (:mod:`ui.components.details`), its events feed the event log, and
the header, status bar and empty-state help are built from what the bridge says about
the hub (URL, role, where the operator token is, whether the connection is encrypted, and
what this console's token may do: a viewer's console says "read-only" in its title, header
and status bar, and every view greys out what would change state). Closing
the window only emits :attr:`MainWindow.closed`; the composition root (``app.desktop``)
owns the loop and shuts the servers down, so the window never has to know they exist.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import platform
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import PySide6
from PySide6.QtCore import (
    QByteArray,
    QItemSelection,
    QModelIndex,
    QSettings,
    QSize,
    Qt,
    QUrl,
    Signal,
    qVersion,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from backend import __version__
from backend.supervisor import Supervisor
from ui.agents.view import AgentsView
from ui.components.details import ComponentDetails
from ui.components.event_log import EventLogView
from ui.components.model import (
    COMPONENT,
    HEALTH,
    INSTANCE,
    KIND,
    LAST_SEEN,
    REPORTED,
    ROUND_TRIP,
    ComponentsModel,
)
from ui.components.proxy import ComponentsProxy
from ui.core import health_style
from ui.core.access import READ_ONLY_COLOUR
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner
from ui.core.typography import escape, title_font
from ui.flows.view import FlowsView
from ui.runners.view import RunnersView
from ui.shell.empty_state import EmptyState
from ui.shell.hub_choice import HubChoice, HubMenu
from ui.shell.notifications import NotificationArea
from ui.tasks.view import TasksView

WINDOW_TITLE = "Control Room"
DEFAULT_SIZE = QSize(1200, 780)
_SETTINGS_GROUP = "MainWindow"


def console_log_file() -> Path | None:
    """The file this process logs to, as the composition root set it up (if it did)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


def summary_text(counts: Mapping[str, int]) -> str:
    """``2 up · 1 half-open · 0 down``."""
    return " · ".join(f"{counts.get(s, 0)} {health_style.label(s)}" for s in health_style.STATES)


def transport_text(url: str, pin: str) -> str:
    """Whether the console's connection to the hub is encrypted, in a few words.

    ``HTTPS, certificate sha256:…`` (the fingerprint an operator compares with
    ``controlroom tls show`` on the hub's machine), or plain HTTP, which a hub serves on
    loopback only: nothing then leaves the machine.
    """
    if url.startswith("https:"):
        return f"HTTPS, certificate {pin}" if pin else "HTTPS"
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return "plain HTTP (loopback only)" if loopback else "plain HTTP (not encrypted)"


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


class MainWindow(QMainWindow):
    """Components, their health and the hub's recent events, fed by one bridge."""

    #: Emitted from :meth:`closeEvent`: the app should stop its services and exit.
    closed = Signal()

    def __init__(
        self,
        bridge: HubBridge,
        settings: QSettings | None = None,
        parent: QWidget | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.supervisor = supervisor
        #: What happens to spawned agents when the console exits (the operator's choice).
        self.keep_agents = False
        #: The hub to reopen the console on after this window closes (File ▸ Connect to
        #: Hub…); None: closing quits.
        self.switch_to: HubChoice | None = None
        self._exit_confirmed = False
        self.exit_box: QMessageBox | None = None
        self.commands = CoroutineRunner(self)
        self.notifications = NotificationArea()
        self.commands.failed.connect(self.notify_error)
        self._settings = settings if settings is not None else QSettings()
        self._ever_selected = False
        self.access = bridge.access
        # Read-only is said where it is always seen: the title, the header, the status bar.
        self.setWindowTitle(f"{WINDOW_TITLE} — {self.access.label}" if self.access.read_only
                            else WINDOW_TITLE)
        self.setMinimumSize(760, 480)

        self.model = ComponentsModel(self, misses=bridge.health.misses)
        self.proxy = ComponentsProxy(self.model, self)

        self.header = self._build_header()
        self.tree = self._build_tree()
        self.empty_state = EmptyState(
            bridge.base_url, str(bridge.admin_token_path),
            hub_machine=bridge.info.host if bridge.is_remote else None,
            can_spawn=supervisor is not None, access=self.access, pin=bridge.info.pin)
        self.details = ComponentDetails(bridge, self.commands)
        self.event_log = EventLogView()
        self.agents_view = (AgentsView(supervisor, bridge, self.commands)
                            if supervisor is not None else None)
        self.tasks_view = TasksView(bridge, self.commands)
        self.tasks_view.panel.meters.settings = self._settings  # output device remembered
        self.runners_view = RunnersView(bridge, self.commands)
        self.flows_view = FlowsView(bridge, self.commands)
        self.setCentralWidget(self._build_central())
        self._build_status_bar()
        self._build_menus()

        self.empty_state.start_studio.connect(self.start_local_studio)
        bridge.components_changed.connect(self.model.set_components)
        bridge.event_received.connect(self.model.note_event)
        bridge.event_received.connect(self.event_log.append_event)
        bridge.event_received.connect(self.details.note_event)
        bridge.events_skipped.connect(self._on_events_skipped)
        bridge.failed.connect(self._on_bridge_failed)
        bridge.connection_changed.connect(self._on_connection_changed)
        self.tasks_view.model.updated.connect(self._update_counts)
        if self.agents_view is not None:
            self.agents_view.model.updated.connect(self._update_counts)
        self._update_counts()
        self.model.updated.connect(self._on_model_updated)
        self.tree.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.proxy.rowsInserted.connect(self._expand_new_groups)

        self._restore_layout()
        self._on_model_updated()

    # -- building ---------------------------------------------------------------------

    def _build_header(self) -> QLabel:
        b = self.bridge
        sep = " &nbsp;&nbsp;·&nbsp;&nbsp; "
        # First, so a narrow window clips the data dir rather than the read-only state.
        access = (f"<b style='color:{READ_ONLY_COLOUR}'>{escape(self.access.label.capitalize())}"
                  f"</b>{sep}" if self.access.read_only else "")
        if b.is_remote:
            header = QLabel(
                f"{access}<b>Remote hub</b>&nbsp; {b.base_url}{sep}<b>Role</b>&nbsp; "
                f"{b.role}{sep}<b>On</b>&nbsp; {b.info.host}{sep}<b>Data</b>&nbsp; "
                f"{b.data_dir}")
            header.setToolTip(
                f"A hub running elsewhere (Control Room {b.info.version} on {b.info.host}); "
                f"this console is attached to it with {self._token_words()}.\n"
                f"Agents connect to {b.base_url}; the operator token is in "
                f"{b.admin_token_path} on {b.info.host}.\n"
                "Closing the console leaves that hub running.")
        else:
            header = QLabel(
                f"{access}<b>Hub</b>&nbsp; {b.base_url}{sep}<b>Role</b>&nbsp; {b.role}{sep}"
                f"<b>Data</b>&nbsp; {b.data_dir}")
            header.setToolTip(
                "This console's own hub and node service, running in this process.\n"
                f"Agents connect to {b.base_url}; the operator token is in "
                f"{b.admin_token_path}.")
        if self.access.read_only:
            header.setToolTip(f"{self.access.reason}.\n\n{header.toolTip()}")
        header.setObjectName("hubHeader")
        header.setTextFormat(Qt.TextFormat.RichText)
        header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Long data dirs are clipped rather than widening the whole window.
        header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        return header

    def _build_central(self) -> QWidget:
        """Header; components | selected component; events below, all in splitters."""
        self._stack = QStackedWidget()
        self._stack.addWidget(self.tree)
        self._stack.addWidget(self.empty_state)
        self.components_title = QLabel("Components")
        self.components_title.setFont(title_font(self.components_title, 1.05))
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(4)
        left_layout.addWidget(self.components_title)
        left_layout.addWidget(self._stack, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("componentsSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        # The event log is a panel under the components rather than a dock: it lines up
        # with them, and View > Events hides it all the same.
        self.events_panel = QWidget()
        events_layout = QVBoxLayout(self.events_panel)
        events_layout.setContentsMargins(0, 4, 0, 0)
        events_layout.setSpacing(4)
        events_title = self.event_log.title  # in line with its filter, to save a row
        events_title.setFont(title_font(events_title, 1.05))
        events_title.setToolTip("What the hub did, newest last")
        events_layout.addWidget(self.event_log, 1)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.splitter, "Components")
        self.tabs.setTabToolTip(0, "Every registered component and its health")
        if self.agents_view is not None:
            index = self.tabs.addTab(self.agents_view, "Agents")
            self.tabs.setTabToolTip(index, "Engines, drivers and nodes spawned on this machine")
        index = self.tabs.addTab(self.tasks_view, "Tasks")
        self.tabs.setTabToolTip(index, "Audio tasks: reserve, play, render, meters")
        index = self.tabs.addTab(self.runners_view, "Runners")
        self.tabs.setTabToolTip(index, "The render farm: runners, their jobs and logs")
        index = self.tabs.addTab(self.flows_view, "Flows")
        self.tabs.setTabToolTip(index, "Nodes' flows: launch, follow runs, answer locks")

        self.main_splitter = QSplitter(Qt.Orientation.Vertical)
        self.main_splitter.setObjectName("mainSplitter")
        self.main_splitter.addWidget(self.tabs)
        self.main_splitter.addWidget(self.events_panel)
        self.main_splitter.setStretchFactor(0, 3)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setChildrenCollapsible(False)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.setSpacing(6)
        layout.addWidget(self.header)
        layout.addWidget(self.notifications)
        layout.addWidget(self.main_splitter, 1)
        return central

    def _build_status_bar(self) -> None:
        self.counts_label = QLabel()
        self.counts_label.setToolTip("Components per health state")
        self.counts_label.setContentsMargins(4, 0, 0, 0)  # in line with the panels above
        self.stale_label = QLabel()
        self.stale_label.setStyleSheet(f"color: {health_style.colour_name('down')}")
        self.stale_label.hide()
        self.address_label = QLabel()
        self._show_address(connected=True)
        self.tasks_label = QLabel("No tasks")
        self.tasks_label.setToolTip("Audio tasks per state (released ones not counted)")
        self.agents_label = QLabel("")
        self.agents_label.setToolTip("Agents spawned by this console, per process state")
        self.statusBar().addWidget(self.counts_label)
        self.statusBar().addWidget(_separator())
        self.statusBar().addWidget(self.tasks_label)
        self.statusBar().addWidget(_separator())
        self.statusBar().addWidget(self.agents_label)
        self.statusBar().addWidget(self.stale_label)
        self.access_label = QLabel(self.access.label.capitalize())
        self.access_label.setObjectName("accessLabel")
        self.access_label.setStyleSheet(f"color: {READ_ONLY_COLOUR}; font-weight: bold")
        self.access_label.setToolTip(f"{self.access.reason}. Reading, following events and "
                                     "listening to tasks work as usual.")
        self.access_label.setVisible(self.access.read_only)
        self.statusBar().addPermanentWidget(self.access_label)
        self.statusBar().addPermanentWidget(self.address_label)

    def _build_tree(self) -> QTreeView:
        tree = QTreeView()
        tree.setObjectName("componentsTree")
        tree.setModel(self.proxy)
        tree.setSortingEnabled(True)
        tree.sortByColumn(COMPONENT, Qt.SortOrder.AscendingOrder)  # by id within each kind
        tree.setAlternatingRowColors(True)
        tree.setUniformRowHeights(True)  # a refresh must not measure every row again
        tree.setWordWrap(False)
        tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        tree.setIconSize(QSize(12, 12))
        tree.setMinimumSize(440, 180)
        tree.setToolTip("Registered components by kind, a driver's instances under it; click "
                        "a column to sort, select one for its details and config")
        header = tree.header()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(COMPONENT, QHeaderView.ResizeMode.Stretch)
        widths = {KIND: 100, HEALTH: 120, ROUND_TRIP: 90, LAST_SEEN: 100}
        for column, width in widths.items():
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        header.setMinimumSectionSize(60)
        return tree

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.hub_menu = HubMenu(self, self._settings,
                                self.bridge.base_url if self.bridge.is_remote else None)
        self.hub_menu.chosen.connect(self.switch)
        self.hub_menu.install(file_menu)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setStatusTip(
            "Close the console; the remote hub keeps running" if self.bridge.is_remote
            else "Close the console and stop its hub and node service")
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

        view_menu = self.menuBar().addMenu("&View")
        self.events_action = QAction("&Events", self)
        self.events_action.setCheckable(True)
        self.events_action.setChecked(True)
        self.events_action.setShortcut(QKeySequence("Ctrl+E"))
        self.events_action.setStatusTip("Show or hide the recent events")
        self.events_action.toggled.connect(self.events_panel.setVisible)
        view_menu.addAction(self.events_action)

        help_menu = self.menuBar().addMenu("&Help")
        api_action = QAction("&API Reference", self)
        api_action.setStatusTip(f"Open {self.bridge.base_url}/docs in a web browser")
        api_action.triggered.connect(
            lambda: QDesktopServices.openUrl(QUrl(f"{self.bridge.base_url}/docs"))
        )
        help_menu.addAction(api_action)
        help_menu.addSeparator()
        self.about_action = QAction("&About Control Room", self)
        self.about_action.setStatusTip("Versions of Control Room, Qt, PySide6 and Python")
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)

    # -- behaviour --------------------------------------------------------------------

    def summary(self) -> str:
        """The status bar's counts as plain text: ``2 up · 1 half-open · 0 down``."""
        return summary_text(self.model.counts())

    def selected_component_id(self) -> str | None:
        return self.details.component_id

    def select_component(self, component_id: str, instance: str | None = None) -> bool:
        """Select a component's row, or one of its instances' (as a click would).

        False if it is not listed. Its group (and driver) are expanded to show it.
        """
        if instance is None:
            index = self.model.index_of(component_id)
        else:
            index = self.model.index_of(instance, owner=component_id)
        if not index.isValid():
            return False
        view_index = self.proxy.mapFromSource(index)
        self.tree.scrollTo(view_index)  # expands its parents
        self.tree.setCurrentIndex(view_index)
        return True

    def _token_words(self) -> str:
        """``an operator token`` or ``a viewer token (read-only)``, for the header's tip."""
        if self.access.read_only:
            return f"a {self.access.kind} token (read-only)"
        return "an operator token"

    def about_text(self) -> str:
        b = self.bridge
        where = f" on {b.info.host}" if b.is_remote else ""
        log_file = console_log_file()
        return (
            f"<h3>Control Room {__version__}</h3>"
            "<p>Operator console for a networked audio studio and its render farm.</p>"
            f"<p><b>Hub</b> {escape(b.base_url)}{escape(where)}<br>"
            f"<b>Connection</b> {escape(transport_text(b.base_url, b.info.pin))}<br>"
            f"<b>Access</b> {escape(self.access.label or 'operator (may change anything)')}"
            "<br>"
            f"<b>Hub data</b> {escape(str(b.data_dir))}<br>"
            f"<b>Operator token</b> {escape(str(b.admin_token_path))}<br>"
            f"<b>This console's log</b> {escape(str(log_file) if log_file else 'not kept')}"
            "</p>"
            f"<p>Qt {qVersion()}<br>PySide6 {PySide6.__version__}<br>"
            f"Python {platform.python_version()}<br>{platform.platform(terse=True)}</p>"
        )

    def show_about(self) -> None:
        """A non-modal box: a modal one would nest an event loop inside the asyncio loop."""
        box = QMessageBox(QMessageBox.Icon.Information, "About Control Room", "", parent=self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.about_text())
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _update_counts(self) -> None:
        counts = self.tasks_view.model.counts()
        counts.pop("released", None)
        self.tasks_label.setText(
            "Tasks: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            if counts else "No tasks")
        if self.supervisor is None:
            self.agents_label.setText("")
            return
        states: dict[str, int] = {}
        for agent in self.supervisor.agents.values():
            states[agent.state.value] = states.get(agent.state.value, 0) + 1
        self.agents_label.setText(
            "Agents: " + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
            if states else "No agents spawned")

    def start_local_studio(self) -> None:
        """An engine, two drivers and a runner on this machine, then the way to the demo."""
        if self.agents_view is None:
            return
        if self.access.read_only:  # its agents need enrollments, which the hub refuses
            self.notify_error("Start a local studio", self.access.reason)
            return
        spawns = self.agents_view.start_local_studio()
        self.event_log.append_note(
            "Starting a local studio: engine, two instance drivers and a runner. Once they "
            "are up, Tasks ▸ Try the demo reserves and plays the demo task.")

        async def started() -> None:
            await asyncio.wait(spawns)
            if any(t.cancelled() or t.exception() is not None for t in spawns):
                self.empty_state.studio_stopped()  # the failure was notified: try again

        self.commands.run("Start a local studio", started())

    def switch(self, choice: HubChoice) -> None:
        """Close as on quit; the composition root reopens the window on ``choice``."""
        self.switch_to = choice
        self.close()

    async def shutdown(self) -> None:
        """Stop what the views run on the loop (streams, playback, pending actions)."""
        self.tasks_view.panel.meters.close_stream()
        self.tasks_view.panel.instances.close_senders()  # no paced change fires after this
        await self.flows_view.close_streams()
        await self.runners_view.close_streams()
        self.commands.cancel_all()
        if self.agents_view is not None:
            self.agents_view.model.detach()
        await self.commands.wait_idle()
        await asyncio.sleep(0)  # cancelled stream followers finish their finally blocks

    def notify_error(self, title: str, message: str) -> None:
        """A non-modal notification, and a line in the event log."""
        self.notifications.error(title, message)
        self.event_log.append_note(f"{title}: {message}")

    def show_tab(self, widget: QWidget) -> None:
        self.tabs.setCurrentWidget(widget)

    def closeEvent(self, event: QCloseEvent) -> None:
        running = self.supervisor.running() if self.supervisor is not None else []
        if running and not self._exit_confirmed:
            event.ignore()
            self._ask_about_agents(len(running))
            return
        self._save_layout()
        event.accept()
        self.closed.emit()

    def _ask_about_agents(self, count: int) -> None:
        """Non-modal: stop the spawned agents (the default) or leave them running."""
        if self.exit_box is not None:
            self.exit_box.raise_()
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Quit Control Room",
                          f"{count} agent{'s' if count != 1 else ''} started from this console "
                          "{} still running.".format("are" if count != 1 else "is"),
                          parent=self)
        box.setInformativeText("Stop them with the console, or leave them running? Agents "
                               "left running keep serving the studio and rejoin the hub "
                               "when the console starts again.")
        self.stop_agents_button = box.addButton("Stop agents and quit",
                                                QMessageBox.ButtonRole.AcceptRole)
        self.keep_agents_button = box.addButton("Leave running and quit",
                                                QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(self.stop_agents_button)
        box.finished.connect(lambda _result: self._on_exit_choice(box))
        self.exit_box = box
        box.open()

    def _on_exit_choice(self, box: QMessageBox) -> None:
        clicked = box.clickedButton()
        self.exit_box = None
        box.deleteLater()
        if clicked is self.stop_agents_button or clicked is self.keep_agents_button:
            self.keep_agents = clicked is self.keep_agents_button
            self._exit_confirmed = True
            self.close()
        else:
            self.switch_to = None  # the operator stays, and so does the hub

    def _on_model_updated(self) -> None:
        count = self.model.component_count()
        empty = count == 0
        self.components_title.setText("Components" if empty else f"Components ({count})")
        self._stack.setCurrentWidget(self.empty_state if empty else self.tree)
        self.details.setVisible(not empty)  # the help gets the whole width
        counts = self.model.counts()
        self.counts_label.setText(" &nbsp;·&nbsp; ".join(
            f"{health_style.dot_html(s)} {counts.get(s, 0)} {health_style.label(s)}"
            for s in health_style.STATES
        ))
        self.counts_label.setAccessibleName(summary_text(counts))  # the words, for readers
        if not empty and not self._ever_selected and not self.tree.selectionModel().hasSelection():
            first = self.proxy.index(0, 0, self.proxy.index(0, 0))
            self.tree.setCurrentIndex(first)  # open on something useful, not a blank panel
        self._show_selected()

    def _on_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._ever_selected = True
        self._show_selected()

    def _show_selected(self) -> None:
        rows = self.tree.selectionModel().selectedRows()
        source = self.proxy.mapToSource(rows[0]) if rows else None
        component = self.model.owner_of(source) if source is not None else None
        note = ""
        item = self.model.item(source) if source is not None else None
        if item is not None and item.row_kind == INSTANCE:
            note = (f"Instance {item.key} ({item.data.get('model', '')}) selected: it is "
                    "fixed on this driver, declared in its config's instances")
        elif item is not None and item.row_kind == REPORTED:
            note = f"{item.key} selected: a component this hub reports as its own"
        self.details.show_component(component, self.model.now(), note)

    def _expand_new_groups(self, parent: QModelIndex, first: int, last: int) -> None:
        """A kind's group opens when it first appears; after that it stays as the operator
        left it (the tree is updated in place, so expansion survives every refresh)."""
        if parent.isValid():
            return
        for row in range(first, last + 1):
            self.tree.expand(self.proxy.index(row, 0))

    def _on_events_skipped(self, count: int) -> None:
        self.event_log.append_note(f"… {count} events skipped: the console fell behind the hub")

    def _on_bridge_failed(self, message: str) -> None:
        self.stale_label.setText(f"Live updates stopped ({message}); the view is stale")
        self.stale_label.show()
        self.event_log.append_note(f"Live updates stopped: {message}")

    def _on_connection_changed(self, connected: bool, message: str) -> None:
        """A remote hub stopped answering, or answers again: said in the status bar."""
        self._show_address(connected, message)
        self.event_log.append_note(message if connected else f"Hub not answering: {message}")

    def _show_address(self, connected: bool, why: str = "") -> None:
        """The status bar's hub address: red, with the reason, while the hub is away."""
        url = self.bridge.base_url
        remote = self.bridge.is_remote
        if connected:
            self.address_label.setText(f"Remote hub {url}" if remote else f"Hub {url}")
            self.address_label.setStyleSheet("")
            self.address_label.setToolTip(
                "The hub this console is attached to; agents and API clients reach it here"
                if remote else "Where agents and API clients reach this console's own hub")
        else:
            self.address_label.setText(f"⚠ Remote hub {url} not answering — retrying")
            self.address_label.setStyleSheet(f"color: {health_style.colour_name('down')}")
            self.address_label.setToolTip(
                f"{why}\nThe view shows what the hub last said; it catches up, missing no "
                "event, when the hub answers again.")

    # -- remembered layout ------------------------------------------------------------

    def _restore_layout(self) -> None:
        s = self._settings
        geometry = s.value(f"{_SETTINGS_GROUP}/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(DEFAULT_SIZE)
            self.splitter.setSizes([700, 480])
            self.main_splitter.setSizes([540, 200])
        for key, restore in (
            ("splitter", self.splitter.restoreState),
            ("main_splitter", self.main_splitter.restoreState),
            ("columns", self.tree.header().restoreState),
        ):
            state = s.value(f"{_SETTINGS_GROUP}/{key}")
            if isinstance(state, QByteArray) and not state.isEmpty():
                restore(state)
        events = s.value(f"{_SETTINGS_GROUP}/events_visible", True)
        self.events_action.setChecked(events not in (False, "false"))

    def _save_layout(self) -> None:
        s = self._settings
        s.setValue(f"{_SETTINGS_GROUP}/geometry", self.saveGeometry())
        s.setValue(f"{_SETTINGS_GROUP}/splitter", self.splitter.saveState())
        s.setValue(f"{_SETTINGS_GROUP}/main_splitter", self.main_splitter.saveState())
        s.setValue(f"{_SETTINGS_GROUP}/columns", self.tree.header().saveState())
        s.setValue(f"{_SETTINGS_GROUP}/events_visible", self.events_action.isChecked())
        s.sync()
