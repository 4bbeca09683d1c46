"""The agents table's model: a row per spawned agent, its process state from the supervisor and
its health from the hub's component snapshots.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtGui import QBrush, QColor

from backend.supervisor import AgentProcess, AgentState, Supervisor
from ui.core import health_style
from ui.core.table_model import HeaderedTableModel

NAME, KIND, PID, PROCESS, HEALTH, UPTIME, HOSTS = range(7)


HEADERS = ("Agent", "Kind", "PID", "Process", "Health at hub", "Started", "Hosts / labels")


_PROCESS_COLOURS = {
    AgentState.CRASHED: "#c62828", AgentState.STOPPED: "#757575",
    AgentState.KEPT: "#6a1b9a", AgentState.STOPPING: "#ef6c00",
    AgentState.STARTING: "#ef6c00", AgentState.RUNNING: "#2e7d32",
}


_Index = QModelIndex | QPersistentModelIndex


class AgentsModel(HeaderedTableModel):
    """One row per spawned agent; process state from the supervisor, health from the hub."""

    headers = HEADERS

    #: ``(agent name, line)``: a line of an agent's output.
    output = QtSignal(str, str)
    #: Something in the table changed (counts, states).
    updated = QtSignal()

    def __init__(self, supervisor: Supervisor, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.supervisor = supervisor
        self._names: list[str] = []
        self._health: dict[str, str] = {}
        self._components: dict[str, dict[str, Any]] = {}
        self._hosts_seen: dict[str, str] = {}
        supervisor.subscribe(self._on_supervisor)
        self.destroyed.connect(lambda: supervisor.unsubscribe(self._on_supervisor))
        self._sync()

    def detach(self) -> None:
        self.supervisor.unsubscribe(self._on_supervisor)

    # -- feeding ----------------------------------------------------------------------

    def set_components(self, components: list[dict[str, Any]]) -> None:
        health = {str(c["id"]): str(c["state"]) for c in components}
        hosts = {str(c["id"]): self._hosted(c) for c in components}
        if health != self._health or hosts != self._hosts_seen:
            self._health = health
            self._hosts_seen = hosts
            self._components = {str(c["id"]): c for c in components}
            if self._names:
                self.dataChanged.emit(self.index(0, HEALTH),
                                      self.index(len(self._names) - 1, HOSTS))
            self.updated.emit()

    @staticmethod
    def _hosted(component: dict[str, Any]) -> str:
        """What the hub says the agent offers: a driver's instances, a runner's labels."""
        report = component.get("report") or {}
        instances = report.get("instances") if isinstance(report, dict) else None
        if isinstance(instances, list) and instances:
            return ", ".join(str(i.get("id")) for i in instances if isinstance(i, dict))
        labels = (component.get("config") or {}).get("labels")
        if component.get("kind") == "runner":
            return "labels: " + (", ".join(map(str, labels)) if labels else "none")
        return ""

    def hosts_of(self, name: str) -> str:
        """The Hosts column: announced at the hub, or (before that) what it was given."""
        shown = self._hosts_seen.get(name, "")
        if shown:
            return shown
        agent = self.supervisor.agents.get(name)
        if agent is None:
            return ""
        config = agent.config or {}
        if agent.kind == "driver":
            if config.get("instances"):
                return "to host " + ", ".join(str(i["id"]) for i in config["instances"])
            return "default rack"
        if agent.kind == "runner":
            labels = config.get("labels") or []
            return "labels: " + (", ".join(map(str, labels)) if labels else "none")
        return ""

    def component(self, name: str) -> dict[str, Any] | None:
        return self._components.get(name)

    def _on_supervisor(self, change: str, agent: AgentProcess, line: str) -> None:
        if change == "output":
            self.output.emit(agent.name, line)
            return
        self._sync()

    def _sync(self) -> None:
        names = list(self.supervisor.agents)
        if names != self._names:
            self.beginResetModel()
            self._names = names
            self.endResetModel()
        elif names:
            self.dataChanged.emit(self.index(0, 0), self.index(len(names) - 1, HOSTS))
        self.updated.emit()

    # -- reading ----------------------------------------------------------------------

    def agent(self, row: int) -> AgentProcess:
        return self.supervisor.agents[self._names[row]]

    def row_of(self, name: str) -> int | None:
        return self._names.index(name) if name in self._names else None

    def health_of(self, name: str) -> str | None:
        return self._health.get(name)

    def row_count(self) -> int:
        return len(self._names)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        agent = self.agent(index.row())
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == NAME:
                return agent.name
            if column == KIND:
                return agent.kind
            if column == PID:
                return str(agent.pid) if agent.pid else "—"
            if column == PROCESS:
                if agent.state in (AgentState.CRASHED, AgentState.STOPPED):
                    return f"{agent.state.value} ({agent.describe_exit()})"
                return agent.state.value
            if column == HEALTH:
                state = self._health.get(agent.name)
                return health_style.label(state) if state else "not registered"
            if column == UPTIME:
                return time.strftime("%H:%M:%S", time.localtime(agent.started_at)) \
                    if agent.started_at else "—"
            if column == HOSTS:
                return self.hosts_of(agent.name)
        if role == Qt.ItemDataRole.ForegroundRole and column == PROCESS:
            return QBrush(QColor(_PROCESS_COLOURS[agent.state]))
        if role == Qt.ItemDataRole.DecorationRole and column == HEALTH:
            state = self._health.get(agent.name)
            return health_style.dot_icon(state) if state else None
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == PROCESS and agent.state is AgentState.CRASHED:
                return (f"{agent.name} exited on its own ({agent.describe_exit()}); "
                        "see its output below, then Restart")
            if column == PID:
                return f"Process id; output also in {agent.log_path}"
            if column == HOSTS:
                return ("What the hub lists for it (a driver's instances as it announced "
                        "them, a runner's labels)" + (f"; config in {agent.data_dir}"
                                                      if agent.config else ""))
            return f"{agent.kind} {agent.name}, data in {agent.data_dir}"
        return None
