"""The console's main window: every registered component and its health, live.

It is a view over a :class:`ui.bridge.HubBridge` and nothing else: the bridge's snapshots
feed the components table (through :class:`ui.components_model.ComponentsModel`), its
events feed the event log, and the header, status bar and empty-state help are built
from what the bridge says about the hub (URL, role, where the operator token is). Closing
the window only emits :attr:`MainWindow.closed`; the composition root (``app.desktop``)
owns the loop and shuts the servers down, so the window never has to know they exist.
"""

from __future__ import annotations

import asyncio
import json
import platform
import shlex
from collections.abc import Mapping
from typing import Any

import PySide6
from PySide6.QtCore import (
    QByteArray,
    QItemSelection,
    QModelIndex,
    QSettings,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QUrl,
    Signal,
    qVersion,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QColor,
    QDesktopServices,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QKeySequence,
    QPalette,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.supervisor import Supervisor
from backend import __version__
from ui import health_style
from ui.actions import Actions
from ui.agents_view import AgentsView
from ui.bridge import HubBridge
from ui.components_model import (
    COMPONENT,
    HEALTH,
    KIND,
    LAST_SEEN,
    ROUND_TRIP,
    SORT_ROLE,
    ComponentsModel,
    format_rtt,
    format_timestamp,
    relative_time,
)
from ui.event_log import EventLogView
from ui.flows_view import FlowsView
from ui.notifications import NotificationArea
from ui.tasks_view import TasksView

WINDOW_TITLE = "Control Room"
DEFAULT_SIZE = QSize(1200, 780)
_SETTINGS_GROUP = "MainWindow"


def _title_font(widget: QWidget, scale: float = 1.25, bold: bool = True) -> QFont:
    font = QFont(widget.font())
    font.setPointSizeF(font.pointSizeF() * scale)
    font.setBold(bold)
    return font


def _mute(label: QLabel) -> None:
    """Secondary text: the palette's text colour blended toward the background.

    Blended rather than a fixed grey, so it stays readable in dark themes too; not
    ``setEnabled(False)``, whose colour is too faint to read comfortably.
    """
    palette = label.palette()
    text = palette.color(QPalette.ColorRole.WindowText)
    back = palette.color(QPalette.ColorRole.Window)
    mixed = QColor(
        (text.red() * 3 + back.red() * 2) // 5,
        (text.green() * 3 + back.green() * 2) // 5,
        (text.blue() * 3 + back.blue() * 2) // 5,
    )
    palette.setColor(QPalette.ColorRole.WindowText, mixed)
    label.setPalette(palette)


def _fixed_font() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def enrollment_command(base_url: str, token_path: str, kind: str = "engine") -> str:
    """The shell command that asks the hub for a one-time enrollment token."""
    return (
        "curl -s -X POST \\\n"
        f"  -H \"Authorization: Bearer $(cat {shlex.quote(token_path)})\" \\\n"
        f"  -H 'content-type: application/json' -d '{{\"kind\": \"{kind}\"}}' \\\n"
        f"  {base_url}/api/v1/enrollments"
    )


def agent_command(base_url: str, kind: str = "engine", name: str = "engine-1") -> str:
    """The shell command that starts an agent with the token from the enrollment."""
    return f"controlroom agent {kind} --hub {base_url} --name {name} --token TOKEN"


def summary_text(counts: Mapping[str, int]) -> str:
    """``2 up · 1 half-open · 0 down``."""
    return " · ".join(f"{counts.get(s, 0)} {health_style.label(s)}" for s in health_style.STATES)


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


class EmptyState(QFrame):
    """What the table area shows while no component has registered: how to add one."""

    def __init__(self, base_url: str, token_path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("emptyState")
        self.enroll = enrollment_command(base_url, token_path)
        self.agent = agent_command(base_url)

        title = QLabel("No components registered yet")
        title.setFont(_title_font(title, 1.35))
        intro = QLabel(
            "Components are the agents that join this hub: the audio engine, instance "
            "drivers, runners and nodes. Each one enrolls once with a one-time token, then "
            "registers on every start. To add one:"
        )
        intro.setWordWrap(True)
        steps = QVBoxLayout()
        steps.setSpacing(6)
        steps.addWidget(self._step(
            "1. Create an enrollment token (<code>POST /api/v1/enrollments</code>) with the "
            f"operator token from <code>{token_path}</code>:"))
        steps.addLayout(self._command(self.enroll, "Copy the enrollment command"))
        steps.addSpacing(8)
        steps.addWidget(self._step(
            "2. Start the agent with the <code>token</code> it returns (needed on its first "
            "start only; it keeps its own credentials after that):"))
        steps.addLayout(self._command(self.agent, "Copy the agent command"))
        outro = QLabel(
            f"It appears here as {health_style.dot_html('half_open')} half-open, then "
            f"{health_style.dot_html('up')} up once it answers its first health check."
        )
        outro.setWordWrap(True)

        content = QWidget()
        content.setMaximumWidth(780)  # lines a reader can follow, buttons near their text
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addLayout(steps)
        layout.addWidget(outro)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(32, 28, 32, 28)
        outer.addWidget(content, 1, Qt.AlignmentFlag.AlignTop)
        outer.addStretch(0)
        self.setStyleSheet(
            "QLabel#command { background: palette(base); border: 1px solid palette(mid);"
            " border-radius: 4px; padding: 6px 8px; }"
        )

    def text(self) -> str:
        """Everything the empty state says, as plain text (the commands included)."""
        return "\n".join(label.text() for label in self.findChildren(QLabel))

    @staticmethod
    def _step(rich: str) -> QLabel:
        label = QLabel(rich)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        return label

    def _command(self, command: str, tip: str) -> QHBoxLayout:
        text = QLabel(command)
        text.setObjectName("command")
        text.setFont(_fixed_font())
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.PlainText)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        text.setToolTip("Select to copy, or use the Copy button")
        copy = QPushButton("Copy")
        copy.setToolTip(tip)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(command))
        row = QHBoxLayout()
        row.addWidget(text, 1)
        row.addWidget(copy, 0, Qt.AlignmentFlag.AlignTop)
        return row


class ComponentDetails(QWidget):
    """The selected component's facts and merged config (read-only for now)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.component_id: str | None = None
        self._stack = QStackedWidget()

        placeholder = QLabel("Select a component to see its health and merged config.")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        placeholder.setWordWrap(True)
        _mute(placeholder)
        self._stack.addWidget(placeholder)

        page = QWidget()
        self.title = QLabel()
        self.title.setFont(_title_font(self.title, 1.3))
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.facts: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        form.setHorizontalSpacing(16)
        for name, tip in (
            ("Kind", "What the component is"),
            ("Health", "The hub's view of it; hover the table cell for the rules"),
            ("Connection", "Whether its agent channel to the hub is open now"),
            ("Registered", "When it last registered (each connect registers again)"),
            ("Last seen", "When it last answered a health check or registered"),
            ("Round trip", "Round trip of the last answered health check"),
        ):
            value = QLabel()
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setToolTip(tip)
            self.facts[name] = value
            form.addRow(f"{name}:", value)
        config_title = QLabel("Merged config")
        config_title.setFont(_title_font(config_title, 1.0))
        config_hint = QLabel(
            "The agent's own config with the stored one laid over it (stored values win). "
            "Read-only here; change it with <code>PUT /api/v1/configs/&lt;id&gt;</code>."
        )
        config_hint.setWordWrap(True)
        _mute(config_hint)
        self.config = QPlainTextEdit()
        self.config.setReadOnly(True)
        self.config.setFont(_fixed_font())
        self.config.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.config.setToolTip("The merged config this component runs with, as JSON")

        layout = QVBoxLayout(page)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addSpacing(8)
        layout.addWidget(config_title)
        layout.addWidget(config_hint)
        layout.addWidget(self.config, 1)
        self._stack.addWidget(page)

        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        frame_layout = QVBoxLayout(frame)
        frame_layout.setContentsMargins(4, 4, 4, 4)
        frame_layout.addWidget(self._stack)
        heading = QLabel("Selected component")
        heading.setFont(_title_font(heading, 1.05))
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        outer.addWidget(heading)
        outer.addWidget(frame, 1)
        self.setMinimumWidth(300)

    def show_component(self, component: Mapping[str, Any] | None, now: float) -> None:
        if component is None:
            self.component_id = None
            self.config.clear()
            self._stack.setCurrentIndex(0)
            return
        self.component_id = str(component.get("id"))
        state = str(component.get("state"))
        self.title.setText(self.component_id)
        self.facts["Kind"].setText(str(component.get("kind", "")))
        self.facts["Health"].setText(f"{health_style.dot_html(state)} "
                                     f"{health_style.label(state)}")
        self.facts["Connection"].setText("connected" if component.get("connected")
                                         else "not connected")
        self.facts["Registered"].setText(format_timestamp(component.get("registered_at")))
        self.facts["Last seen"].setText(
            f"{relative_time(component.get('last_seen'), now)} "
            f"({format_timestamp(component.get('last_seen'))})"
            if component.get("last_seen") is not None else "never"
        )
        self.facts["Round trip"].setText(format_rtt(component.get("rtt_ms")))
        text = json.dumps(component.get("config") or {}, indent=2, ensure_ascii=False)
        if self.config.toPlainText() != text:  # keep the operator's scroll and selection
            self.config.setPlainText(text)
        self._stack.setCurrentIndex(1)


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
        self._exit_confirmed = False
        self.exit_box: QMessageBox | None = None
        self.commands = Actions(self)
        self.notifications = NotificationArea()
        self.commands.failed.connect(self.notify_error)
        self._settings = settings if settings is not None else QSettings()
        self._ever_selected = False
        self.setWindowTitle(WINDOW_TITLE)
        self.setMinimumSize(760, 480)

        self.model = ComponentsModel(self, misses=bridge.health.misses)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)

        self.header = self._build_header()
        self.table = self._build_table()
        self.empty_state = EmptyState(bridge.base_url, str(bridge.admin_token_path))
        self.details = ComponentDetails()
        self.event_log = EventLogView()
        self.agents_view = (AgentsView(supervisor, bridge, self.commands)
                            if supervisor is not None else None)
        self.tasks_view = TasksView(bridge, self.commands)
        self.flows_view = FlowsView(bridge, self.commands)
        self.setCentralWidget(self._build_central())
        self._build_status_bar()
        self._build_menus()

        bridge.components_changed.connect(self.model.set_components)
        bridge.event_received.connect(self.model.note_event)
        bridge.event_received.connect(self.event_log.append_event)
        bridge.events_skipped.connect(self._on_events_skipped)
        bridge.failed.connect(self._on_bridge_failed)
        self.tasks_view.model.updated.connect(self._update_counts)
        if self.agents_view is not None:
            self.agents_view.model.updated.connect(self._update_counts)
        self._update_counts()
        self.model.updated.connect(self._on_model_updated)
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)

        self._restore_layout()
        self._on_model_updated()

    # -- building ---------------------------------------------------------------------

    def _build_header(self) -> QLabel:
        b = self.bridge
        header = QLabel(
            f"<b>Hub</b>&nbsp; {b.base_url} &nbsp;&nbsp;·&nbsp;&nbsp; <b>Role</b>&nbsp; {b.role}"
            f" &nbsp;&nbsp;·&nbsp;&nbsp; <b>Data</b>&nbsp; {b.data_dir}"
        )
        header.setObjectName("hubHeader")
        header.setTextFormat(Qt.TextFormat.RichText)
        header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Long data dirs are clipped rather than widening the whole window.
        header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        header.setToolTip(
            "This console's own hub and node service, running in this process.\n"
            f"Agents connect to {b.base_url}; the operator token is in {b.admin_token_path}."
        )
        return header

    def _build_central(self) -> QWidget:
        """Header; components | selected component; events below, all in splitters."""
        self._stack = QStackedWidget()
        self._stack.addWidget(self.table)
        self._stack.addWidget(self.empty_state)
        self.components_title = QLabel("Components")
        self.components_title.setFont(_title_font(self.components_title, 1.05))
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
        events_title = QLabel("Events")
        events_title.setFont(_title_font(events_title, 1.05))
        events_title.setToolTip("What the hub did, newest last")
        events_layout.addWidget(events_title)
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
        self.address_label = QLabel(f"Hub {self.bridge.base_url}")
        self.address_label.setToolTip("Where agents and API clients reach this hub")
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
        self.statusBar().addPermanentWidget(self.address_label)

    def _build_table(self) -> QTableView:
        table = QTableView()
        table.setObjectName("componentsTable")
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(KIND, Qt.SortOrder.AscendingOrder)  # (kind, id): the model's order
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.setWordWrap(False)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setIconSize(QSize(12, 12))
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
        table.setMinimumSize(440, 180)
        table.setToolTip("Registered components; click a column to sort, select one for details")
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(COMPONENT, QHeaderView.ResizeMode.Stretch)
        widths = {KIND: 90, HEALTH: 110, ROUND_TRIP: 100, LAST_SEEN: 110}
        for column, width in widths.items():
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        header.setMinimumSectionSize(60)
        return table

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setStatusTip("Close the console and stop its hub and node service")
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

    def select_component(self, component_id: str) -> bool:
        """Select a component's row (as a click would); False if it is not listed."""
        row = self.model.row_of(component_id)
        if row is None:
            return False
        self.table.selectRow(self.proxy.mapFromSource(self.model.index(row, 0)).row())
        return True

    def about_text(self) -> str:
        return (
            f"<h3>Control Room {__version__}</h3>"
            "<p>Operator console for a networked audio studio and its render farm.</p>"
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

    async def shutdown(self) -> None:
        """Stop what the views run on the loop (streams, playback, pending actions)."""
        self.tasks_view.panel.meters.close_stream()
        await self.flows_view.close_streams()
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

    def _on_model_updated(self) -> None:
        empty = self.model.rowCount() == 0
        self.components_title.setText(
            "Components" if empty else f"Components ({self.model.rowCount()})"
        )
        self._stack.setCurrentWidget(self.empty_state if empty else self.table)
        self.details.setVisible(not empty)  # the help gets the whole width
        counts = self.model.counts()
        self.counts_label.setText(" &nbsp;·&nbsp; ".join(
            f"{health_style.dot_html(s)} {counts.get(s, 0)} {health_style.label(s)}"
            for s in health_style.STATES
        ))
        self.counts_label.setAccessibleName(summary_text(counts))  # the words, for readers
        if not empty and not self._ever_selected and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)  # open on something useful rather than a blank panel
        self._show_selected()

    def _on_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._ever_selected = True
        self._show_selected()

    def _show_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        component = None
        if rows:
            source: QModelIndex = self.proxy.mapToSource(rows[0])
            component = self.model.component(source.row())
        self.details.show_component(component, self.model.now())

    def _on_events_skipped(self, count: int) -> None:
        self.event_log.append_note(f"… {count} events skipped: the console fell behind the hub")

    def _on_bridge_failed(self, message: str) -> None:
        self.stale_label.setText(f"Live updates stopped ({message}); the view is stale")
        self.stale_label.show()
        self.event_log.append_note(f"Live updates stopped: {message}")

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
            ("columns", self.table.horizontalHeader().restoreState),
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
        s.setValue(f"{_SETTINGS_GROUP}/columns", self.table.horizontalHeader().saveState())
        s.setValue(f"{_SETTINGS_GROUP}/events_visible", self.events_action.isChecked())
        s.sync()
