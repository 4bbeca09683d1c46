"""The runs table's model: a run launched from this console (node, flow, id, the node's view of
it and its event lines), the rows of those runs, and one event as a line of text.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtGui import QBrush, QColor

from ui.core.table_model import HeaderedTableModel

FINAL = ("done", "error", "cancelled", "interrupted")


RUN_COLOURS = {
    "pending": "#ef6c00", "running": "#1565c0", "locked": "#6a1b9a", "done": "#2e7d32",
    "error": "#c62828", "cancelled": "#757575", "interrupted": "#c62828",
}


NODE, FLOW, FID, STATE, PROGRESS = range(5)


HEADERS = ("Node", "Flow", "Run", "State", "Progress")


_Index = QModelIndex | QPersistentModelIndex


@dataclass
class Run:
    node: str
    flow: str
    fid: str
    view: dict[str, Any] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return str(self.view.get("state", "pending"))


def event_line(ts: float, kind: str, data: dict[str, Any]) -> str:
    """One event as the operator reads it: time, kind, and what it says."""
    stamp = time.strftime("%H:%M:%S", time.localtime(ts))
    if kind == "log":
        text = str(data.get("message", data))
    elif kind == "progress":
        text = f"{float(data.get('value') or 0) * 100:.0f} %"
        if data.get("message"):
            text += f" {data['message']}"
    elif kind == "lock":
        text = f"locked: {data.get('prompt', '')}"
    elif kind == "child":
        text = (f"{data.get('flow', '')} {data.get('fid', '')} on {data.get('node', '')}: "
                f"{data.get('state', '')}")
        locks = data.get("locks") or []
        if locks and isinstance(locks[0], dict):
            text += f", waiting for: {locks[0].get('prompt', '')}"
    elif kind in ("release", "deny"):
        text = (f"candidate {data.get('cid', '')} " +
                ("released" if kind == "release" else f"denied: {data.get('reason', '')}"))
    elif kind in ("result", "final", "status", "error"):
        text = json.dumps(data, ensure_ascii=False)[:300]
    else:
        text = json.dumps(data, ensure_ascii=False)[:200]
    return f"{stamp}  {kind:<9} {text}"


class RunsModel(HeaderedTableModel):
    headers = HEADERS

    updated = QtSignal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runs: list[Run] = []

    def add(self, run: Run) -> None:
        self.beginInsertRows(QModelIndex(), len(self.runs), len(self.runs))
        self.runs.append(run)
        self.endInsertRows()
        self.updated.emit()

    def find(self, fid: str | None) -> Run | None:
        return next((r for r in self.runs if r.fid == fid), None)

    def row_of(self, fid: str) -> int | None:
        return next((i for i, r in enumerate(self.runs) if r.fid == fid), None)

    def changed(self, run: Run) -> None:
        row = self.row_of(run.fid)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, PROGRESS))
        self.updated.emit()

    def row_count(self) -> int:
        return len(self.runs)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run = self.runs[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == PROGRESS:
                progress = run.view.get("progress")
                if run.state == "done":
                    progress = 1.0
                return f"{float(progress) * 100:.0f} %" if progress is not None else ""
            return (run.node, run.flow, run.fid, run.state)[column]
        if role == Qt.ItemDataRole.ForegroundRole and column == STATE:
            return QBrush(QColor(RUN_COLOURS.get(run.state, "#000000")))
        if role == Qt.ItemDataRole.ToolTipRole:
            error = run.view.get("error")
            return f"{run.flow} on {run.node}: {run.state}" + (f" — {error}" if error else "")
        return None
