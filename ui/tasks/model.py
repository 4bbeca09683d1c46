"""The tasks table's model, and what a task's view dict says: which commands its hub accepts
now, its running render and the time it has left, a one-line detail.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor

from ui.core.table_model import RecordsTableModel

TASK, STATE, ENGINE, DRIVERS, DETAIL = range(5)


HEADERS = ("Task", "State", "Engine", "Drivers", "Detail")


STATE_COLOURS = {
    "pending": "#ef6c00", "ready": "#1565c0", "playing": "#2e7d32", "rendering": "#6a1b9a",
    "failed": "#c62828", "released": "#757575",
}


_Index = QModelIndex | QPersistentModelIndex


def active_render(task: dict[str, Any]) -> dict[str, Any] | None:
    for render in task.get("renders", []):
        if render.get("state") == "running":
            return dict(render)
    return None


def time_left(render: dict[str, Any], now: float) -> float | None:
    """Seconds left at the render's average pace so far; None before there is a pace."""
    progress = float(render.get("progress") or 0.0)
    started = float(render.get("started_at") or 0.0)
    if progress <= 0.0 or started <= 0.0 or progress >= 1.0:
        return None
    elapsed = max(0.0, now - started)
    return elapsed * (1.0 - progress) / progress


def detail_text(task: dict[str, Any]) -> str:
    state = task.get("state")
    if state == "failed":
        return str(task.get("error") or "failed")
    if state == "pending" and task.get("waiting_for"):
        return "waiting for " + ", ".join(task["waiting_for"])
    render = active_render(task)
    if render is not None:
        return f"rendering {float(render.get('progress') or 0) * 100:.0f} %"
    if state == "playing":
        position = float((task.get("play") or {}).get("position_s") or 0)
        return f"playing at {position:.1f} s" if position else "playing in real time"
    done = [r for r in task.get("renders", []) if r.get("state") == "done"]
    if done:
        return f"{len(done)} render{'s' * (len(done) != 1)} done"
    return ""


class TasksModel(RecordsTableModel):
    """One row per audio task, oldest first, as the hub lists them."""

    headers = HEADERS

    def set_tasks(self, tasks: list[dict[str, Any]]) -> None:
        self.set_records(tasks)

    def tasks(self) -> list[dict[str, Any]]:
        return self.records()

    def task(self, row: int) -> dict[str, Any]:
        return self.record(row)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        task = self._records[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                task["id"], task["state"], task.get("engine", ""),
                ", ".join(sorted(task.get("drivers") or {})) or "—", detail_text(task),
            )[column]
        if role == Qt.ItemDataRole.ForegroundRole and column == STATE:
            return QBrush(QColor(STATE_COLOURS.get(task["state"], "#000000")))
        if role == Qt.ItemDataRole.ToolTipRole:
            return detail_text(task) or f"task {task['id']} is {task['state']}"
        return None
