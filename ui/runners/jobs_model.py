"""The jobs table: what each job runs, its state in colour and words, runner, progress.

Rows are the dicts ``GET /api/v1/jobs`` returns (docs/runners.md), newest first, so
the job just submitted is at the top. The Progress column carries the fraction in
:data:`PROGRESS_ROLE` for :class:`ProgressDelegate`, which paints it as a progress bar
in the job state's colour.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from functools import cache
from pathlib import PurePath
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QWidget,
)

from ui.core.table_model import RecordsTableModel

JOB, KIND, WHAT, STATE, RUNNER, PROGRESS, DURATION, RESULT = range(8)
HEADERS = ("Job", "Kind", "What", "State", "Runner", "Progress", "Duration", "Result")
#: The job's progress as a float 0..1 (None: no bar).
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex

#: States the title counts as still going ("N queued or running"); what may be done with a
#: job is not decided here but by its hub (:func:`offers`).
ACTIVE = ("queued", "running")
#: States whose output is complete: the log is fetched whole, not followed.
ENDED = ("succeeded", "failed", "cancelled", "timed_out", "lost")
STATE_COLOURS = {
    "queued": "#d4a72c", "running": "#1565c0", "succeeded": "#2da44e", "failed": "#cf222e",
    "cancelled": "#8c959f", "timed_out": "#e16f24", "lost": "#8250df",
}
STATE_MEANINGS = {
    "queued": "queued: waiting for a runner whose free resources and labels fit",
    "running": "running on its runner",
    "succeeded": "succeeded: exited with code 0",
    "failed": "failed: exited with an error, or could not start",
    "cancelled": "cancelled by an operator",
    "timed_out": "timed out: ran longer than its timeout and was stopped",
    "lost": "lost: its runner stayed away longer than the hub's lease; it may still "
            "report the real outcome when it comes back",
}


def state_word(state: str) -> str:
    return state.replace("_", " ")


def state_colour(state: str) -> str:
    return STATE_COLOURS.get(state, "#8c959f")


@cache
def state_icon(state: str, size: int = 12) -> QIcon:
    """A filled dot in the state's colour (next to the word, never instead of it)."""
    scale = 2
    pixmap = QPixmap(size * scale, size * scale)
    pixmap.setDevicePixelRatio(scale)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    fill = QColor(state_colour(state))
    painter.setPen(fill.darker(130))
    painter.setBrush(fill)
    painter.drawEllipse(QRectF(1.5, 1.5, size - 3.0, size - 3.0))
    painter.end()
    icon = QIcon(pixmap)
    icon.addPixmap(pixmap, QIcon.Mode.Selected)
    return icon


def what_text(job: Mapping[str, Any], short: bool = False) -> str:
    """The command line, or what a render job produces.

    ``short`` is for a table cell: one line, the program by its name rather than its
    whole path (the details show the exact command line).
    """
    payload = job.get("payload") or {}
    if job.get("kind") == "command":
        argv = [str(a) for a in payload.get("argv") or []]
        if not short:
            return shlex.join(argv)
        if argv:
            argv[0] = PurePath(argv[0]).name or argv[0]
        return " ".join(" ⏎ ".join(a.split("\n")) for a in argv)
    spec = payload.get("spec") or {}
    tracks = len(spec.get("tracks") or []) if isinstance(spec, dict) else 0
    return f"render {payload.get('name', 'render.wav')} ({tracks} track{'s' * (tracks != 1)})"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def duration_text(job: Mapping[str, Any], now: float) -> str:
    """How long it ran (or has been running, or has waited in the queue)."""
    state = str(job.get("state"))
    if job.get("duration_s") is not None:
        return format_duration(float(job["duration_s"]))
    started, ended = job.get("started_at"), job.get("ended_at")
    if started is not None:
        return format_duration((float(ended) if ended else now) - float(started))
    if state == "queued" and job.get("created_at") is not None:
        return f"waiting {format_duration(now - float(job['created_at']))}"
    return ""


def result_text(job: Mapping[str, Any]) -> str:
    """The outcome in words: exit code, the error, or why it is still queued."""
    state = str(job.get("state"))
    if state == "queued":
        reason = job.get("reason") or "waiting for a runner"
        return f"cancelling… {reason}" if job.get("cancel_requested") else str(reason)
    if state == "running":
        return "cancelling…" if job.get("cancel_requested") else ""
    if state == "succeeded":
        return f"exit code {job.get('exit_code', 0)}"
    error = job.get("error")
    if error:
        return str(error)
    if job.get("exit_code") is not None:
        return f"exit code {job['exit_code']}"
    return state_word(state)


def progress_text(job: Mapping[str, Any]) -> str:
    state = str(job.get("state"))
    progress = float(job.get("progress") or 0.0)
    if state == "queued":
        return "queued"
    if state == "running" and progress <= 0:
        return "running"
    if state != "succeeded" and progress <= 0:
        return "—"  # ended before it reported any progress
    return f"{progress * 100:.0f} %"


class JobsModel(RecordsTableModel):
    """One row per job, newest first."""

    headers = HEADERS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._now = time.time()

    def set_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """Every job as the hub lists it (oldest first); shown newest first."""
        self._now = time.time()
        self.set_records(sorted(jobs, key=lambda j: float(j.get("created_at") or 0),
                                reverse=True))

    def refreshed(self) -> None:
        self.tick()

    def tick(self) -> None:
        """Repaint running durations and waiting times without asking the hub."""
        self._now = time.time()
        super().refreshed()

    def now(self) -> float:
        """The time the durations are shown at (the last refresh or tick)."""
        return self._now

    def jobs(self) -> list[dict[str, Any]]:
        return self.records()

    def job(self, row: int) -> dict[str, Any]:
        return self.record(row)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        job = self._records[index.row()]
        column = index.column()
        state = str(job.get("state"))
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                str(job["id"]), str(job.get("kind")), what_text(job, short=True),
                state_word(state),
                str(job.get("runner") or job.get("offered_to") or "—"), progress_text(job),
                duration_text(job, self._now), result_text(job),
            )[column]
        if role == PROGRESS_ROLE and column == PROGRESS:
            return float(job.get("progress") or 0.0)
        if role == Qt.ItemDataRole.DecorationRole and column == STATE:
            return state_icon(state)
        if role == Qt.ItemDataRole.ForegroundRole and column == STATE:
            return QColor(state_colour(state))
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == STATE:
                return STATE_MEANINGS.get(state, state)
            if column == PROGRESS:
                return ("From lines like 'progress 0.42' or 'progress 42%' in the job's "
                        "output; a job that prints none shows 100 % only when it succeeds")
            if column == RUNNER and not job.get("runner") and job.get("offered_to"):
                return f"offered to {job['offered_to']}, not accepted yet"
            if column == WHAT:
                return what_text(job)
            if column == RESULT:
                return result_text(job) or None
        return None


class ProgressDelegate(QStyledItemDelegate):
    """Paints the Progress column as a progress bar in the job state's colour."""

    def __init__(self, model: JobsModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        value = index.data(PROGRESS_ROLE)
        if value is None:
            super().paint(painter, option, index)
            return
        widget: QWidget | None = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        # The row's background (selection, alternating colour) first, then the bar on it.
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter,
                            widget)
        job = self._model.job(index.row()) if index.row() < self._model.row_count() else {}
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(4, 3, -4, -3)
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = round(max(0.0, min(1.0, float(value))) * 1000)
        bar.text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        bar.palette = QPalette(option.palette)
        bar.palette.setColor(QPalette.ColorRole.Highlight,
                             QColor(state_colour(str(job.get("state")))))
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(max(hint.width(), 110), hint.height())
