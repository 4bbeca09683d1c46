"""Agents on this machine: spawn an engine, drivers, runners and a node; watch, restart, stop.

The view is over an :class:`backend.supervisor.Supervisor` (the processes) and the bridge's
component snapshots (what the hub thinks of them): a row per spawned agent with its PID,
its process state (running, crashed, stopped), its health at the hub and what it hosts
(a driver's instances as it announced them, a runner's labels), and below the table the
output of the selected agent. Quick buttons spawn with defaults; "Custom drivers…" and
"Spawn runner…" open the non-modal dialogs of :mod:`ui.agents.spawn_dialogs` to choose first.
Commands go through :class:`ui.core.coroutines.CoroutineRunner`, so a spawn never blocks
the window and a failure becomes a notification. Every agent enrolls with a one-time token
this console asks its hub for, which only an operator token may: on a read-only console
the spawn, restart and stop buttons are greyed out with the reason.
"""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from backend.supervisor import AgentProcess, Supervisor
from ui.agents.model import HEALTH, KIND, NAME, PID, PROCESS, UPTIME, AgentsModel
from ui.agents.spawn_dialogs import DriverPlan, DriversDialog, RunnerDialog
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner
from ui.core.table_model import record_table


class AgentsView(QWidget):
    """The Agents tab: spawn buttons, the agents table, and the selected agent's output."""

    def __init__(self, supervisor: Supervisor, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.supervisor = supervisor
        self.commands = actions
        self.model = AgentsModel(supervisor, self)
        bridge.components_changed.connect(self.model.set_components)

        self.spawn_engine_button = QPushButton("Spawn engine")
        self.spawn_engine_button.setToolTip(
            "Start an audio engine on this machine as a child process, enrolled with a "
            "fresh one-time token")
        self.spawn_engine_button.clicked.connect(lambda: self.spawn("engine"))
        self.driver_count = QSpinBox()
        self.driver_count.setRange(1, 8)
        self.driver_count.setValue(2)
        self.driver_count.setToolTip("How many instance drivers to start")
        self.spawn_drivers_button = QPushButton("Spawn drivers")
        self.spawn_drivers_button.setToolTip(
            "Start instance drivers, each hosting the default rack NAME.eq, NAME.comp, "
            "NAME.tape")
        self.spawn_drivers_button.clicked.connect(
            lambda: self.spawn("driver", self.driver_count.value()))
        self.custom_drivers_button = QPushButton("Custom drivers…")
        self.custom_drivers_button.setToolTip(
            "Choose how many drivers to start and which instance models (eq, compressor, "
            "saturator, gain) each one hosts")
        self.custom_drivers_button.clicked.connect(self.open_drivers_dialog)
        self.spawn_runner_button = QPushButton("Spawn runner…")
        self.spawn_runner_button.setToolTip(
            "Start a runner on this machine that takes jobs (commands, renders) from this "
            "hub; choose its labels first")
        self.spawn_runner_button.clicked.connect(self.open_runner_dialog)
        self.drivers_dialog: DriversDialog | None = None
        self.runner_dialog: RunnerDialog | None = None
        self.spawn_node_button = QPushButton("Spawn node")
        self.spawn_node_button.setToolTip("Start an extra node service with its own flows")
        self.spawn_node_button.clicked.connect(lambda: self.spawn("node"))
        self.restart_button = QPushButton("Restart")
        self.restart_button.setToolTip("Start the selected agent again (same name and data)")
        self.restart_button.clicked.connect(self.restart_selected)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Ask the selected agent to sign off (SIGTERM), then kill it")
        self.stop_button.clicked.connect(self.stop_selected)
        self.access = bridge.access
        self.access.guard(self.spawn_engine_button, self.driver_count,
                          self.spawn_drivers_button, self.custom_drivers_button,
                          self.spawn_runner_button, self.spawn_node_button,
                          self.restart_button, self.stop_button)

        bar = QHBoxLayout()
        bar.addWidget(self.spawn_engine_button)
        bar.addSpacing(12)
        bar.addWidget(self.driver_count)
        bar.addWidget(self.spawn_drivers_button)
        bar.addWidget(self.custom_drivers_button)
        bar.addSpacing(12)
        bar.addWidget(self.spawn_runner_button)
        bar.addSpacing(12)
        bar.addWidget(self.spawn_node_button)
        bar.addStretch(1)
        bar.addWidget(self.restart_button)
        bar.addWidget(self.stop_button)

        self.table = record_table(self.model, "agentsTable")
        self.table.setMinimumHeight(120)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for column, width in ((NAME, 110), (KIND, 70), (PID, 70), (PROCESS, 200),
                              (HEALTH, 110), (UPTIME, 80)):
            header.resizeSection(column, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)

        self.empty_hint = QLabel(
            "No agents started from this console yet. <b>Spawn engine</b> and "
            "<b>Spawn drivers</b> give you what the demo spec needs (engine-1, driver-1, "
            "driver-2); each process enrolls by itself and turns <i>up</i> within seconds. "
            "<b>Custom drivers…</b> chooses the instances each driver hosts; "
            "<b>Spawn runner…</b> adds a runner to the render farm.")
        if self.access.read_only:
            self.empty_hint.setText(
                f"This console is {self.access.label}: an agent started here enrolls with "
                "a one-time token from the hub, which only an operator token may ask for.")
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setTextFormat(Qt.TextFormat.RichText)

        self.output_title = QLabel("Output")
        self.output = QPlainTextEdit()
        self.output.setObjectName("agentOutput")
        self.output.setReadOnly(True)
        self.output.setMaximumBlockCount(5000)
        self.output.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.output.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.output.setToolTip("The selected agent's stdout and stderr (also in its agent.log)")
        output_panel = QWidget()
        out_layout = QVBoxLayout(output_panel)
        out_layout.setContentsMargins(0, 0, 0, 0)
        out_layout.addWidget(self.output_title)
        out_layout.addWidget(self.output, 1)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(bar)
        top_layout.addWidget(self.empty_hint)
        top_layout.addWidget(self.table, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(output_panel)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([220, 200])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)
        self.setMinimumSize(520, 320)

        self.model.output.connect(self._on_output)
        self.model.updated.connect(self._refresh)
        self._refresh()

    # -- commands ---------------------------------------------------------------------

    def spawn(self, kind: str, count: int = 1) -> list[asyncio.Task[Any]]:
        """Start ``count`` agents of a kind; each takes the next free name when it runs."""
        return [self.commands.run(f"Spawn {kind}", self.supervisor.spawn(kind),
                                  on_done=lambda agent: self._spawned(agent))
                for _ in range(count)]

    def start_local_studio(self) -> list[asyncio.Task[Any]]:
        """The agents a first look needs: an engine, two drivers with the default racks
        (the demo task's instances) and a runner, each enrolled by the supervisor."""
        return [*self.spawn("engine"), *self.spawn("driver", 2), *self.spawn("runner")]

    def open_drivers_dialog(self) -> DriversDialog:
        """Show the drivers dialog (non-modal); one at a time, raised if already open."""
        if self.drivers_dialog is None or not self.drivers_dialog.isVisible():
            dialog = DriversDialog(lambda n: self.supervisor.next_names("driver", n), self)
            dialog.spawn_requested.connect(self.spawn_drivers)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.destroyed.connect(lambda: self._forget_dialog("drivers_dialog", dialog))
            self.drivers_dialog = dialog
        self.drivers_dialog.show()
        self.drivers_dialog.raise_()
        return self.drivers_dialog

    def open_runner_dialog(self) -> RunnerDialog:
        if self.runner_dialog is None or not self.runner_dialog.isVisible():
            dialog = RunnerDialog(self.supervisor.next_name("runner"), self)
            dialog.spawn_requested.connect(self.spawn_runner)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.destroyed.connect(lambda: self._forget_dialog("runner_dialog", dialog))
            self.runner_dialog = dialog
        self.runner_dialog.show()
        self.runner_dialog.raise_()
        return self.runner_dialog

    def _forget_dialog(self, attribute: str, dialog: object) -> None:
        if getattr(self, attribute) is dialog:
            setattr(self, attribute, None)

    def spawn_drivers(self, plan: DriverPlan) -> None:
        """Start each planned driver under its name, with its rack (None: the default)."""
        for name, config in plan:
            self.commands.run(f"Spawn {name}",
                              self.supervisor.spawn("driver", name, config=config),
                              on_done=lambda agent: self._spawned(agent))

    def spawn_runner(self, name: str, labels: list[str]) -> None:
        """Start a runner with its labels (in its config file, so a restart keeps them)."""
        self.commands.run(f"Spawn {name}",
                          self.supervisor.spawn("runner", name, config={"labels": labels}),
                          on_done=lambda agent: self._spawned(agent))

    def _spawned(self, agent: AgentProcess) -> None:
        if self.selected_name() is None:
            self.select(agent.name)

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.agent(rows[0].row()).name if rows else None

    def select(self, name: str) -> bool:
        row = self.model.row_of(name)
        if row is None:
            return False
        self.table.selectRow(row)
        return True

    def restart_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.commands.run(f"Restart {name}", self.supervisor.restart(name))

    def stop_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.commands.run(f"Stop {name}", self.supervisor.stop(name))

    # -- reacting ---------------------------------------------------------------------

    def _refresh(self) -> None:
        empty = self.model.rowCount() == 0
        self.empty_hint.setVisible(empty)
        name = self.selected_name()
        agent = self.supervisor.agents.get(name) if name else None
        self.restart_button.setEnabled(agent is not None and not agent.alive)
        self.stop_button.setEnabled(agent is not None and agent.alive)
        if agent is not None:
            self.output_title.setText(f"Output of {agent.name} (PID {agent.pid or '—'}) — "
                                      f"{agent.log_path}")

    def _on_selection(self, *_args: object) -> None:
        name = self.selected_name()
        self.output.clear()
        if name is not None:
            self.output.setPlainText("\n".join(self.supervisor.agents[name].lines))
            self.output.verticalScrollBar().setValue(self.output.verticalScrollBar().maximum())
        self._refresh()

    def _on_output(self, name: str, line: str) -> None:
        if name == self.selected_name():
            self.output.appendPlainText(line)
        elif self.selected_name() is None:
            self.select(name)

    def output_text(self) -> str:
        return self.output.toPlainText()
