"""The recent-events panel: one readable line per hub event, newest last, with a filter.

:func:`describe` turns an event (``Event.as_json()``) into a sentence an operator reads
without knowing the event types: who registered, which state changed and why. The widget
keeps the newest :data:`RING_SIZE` lines in a ring and shows those that match a filter
by kind (:data:`CATEGORIES`, from the event type's prefix) and a search text
(case-insensitive substring), with a count "showing N of M". It must stay cheap while
hundreds of events arrive a second: a new line is only checked against the filter and
appended (in batches, :data:`FLUSH_MS` apart); the whole text is rebuilt only when the
filter itself changes. The text follows the end unless the operator has scrolled back.
"""

from __future__ import annotations

import html
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.core import health_style

#: How many lines are kept (matching the filter or not).
RING_SIZE = 5000
#: Kept for callers that spoke of the visible cap: the ring's size.
MAX_LINES = RING_SIZE
#: New lines are added to the text at most this often (one layout pass per batch).
FLUSH_MS = 50
#: The search is applied this long after the last keystroke.
SEARCH_DELAY_MS = 150

#: ``(key, label, event type prefixes)``; console notes have no prefix of their own.
CATEGORIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("component", "Components", ("component.", "config.", "enrollment.", "hub.")),
    ("task", "Tasks", ("task.",)),
    ("job", "Jobs", ("job.",)),
    ("runner", "Runners", ("runner.",)),
    ("flow", "Flows / nodes", ("node.", "flow.", "run.")),
    ("note", "Console notes", ()),
    ("other", "Other", ()),
)
_PREFIXES = [(prefix, key) for key, _, prefixes in CATEGORIES for prefix in prefixes]
_TAG = re.compile(r"<[^>]+>")


def category(event_type: str) -> str:
    """The filter category of an event type: ``component``, ``task``, ... or ``other``."""
    for prefix, key in _PREFIXES:
        if event_type.startswith(prefix):
            return key
    return "other"


def _state(value: Any) -> str:
    state = str(value)
    return (f'<span style="color:{health_style.colour_name(state)}">'
            f"{html.escape(health_style.label(state))}</span>")


def _kind_article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def describe(event: Mapping[str, Any]) -> str:
    """The event as one line of rich text (everything from the hub is escaped)."""
    kind = str(event.get("type", ""))
    subject = html.escape(str(event.get("subject", "")))
    data: Mapping[str, Any] = event.get("data") or {}
    who = f"<b>{subject}</b>"
    if kind == "component.registered":
        again = " again" if data.get("old") == "down" else ""
        return (f"{who} ({html.escape(str(data.get('kind', '')))}) registered{again}; "
                f"{_state(data.get('state'))} until its first health check is answered")
    if kind == "component.state":
        return (f"{who} {_state(data.get('old'))} → {_state(data.get('new'))}: "
                f"{html.escape(str(data.get('reason', '')))}")
    if kind == "component.config":
        pushed = "pushed to it live" if data.get("pushed") else "applies when it reconnects"
        return f"{who} config changed; {pushed}"
    if kind == "component.report":
        reported = data.get("components") or []
        return f"{who} reported {len(reported)} component(s) of its own"
    if kind == "config.stored":
        return f"config stored for {who} (not registered yet)"
    if kind == "enrollment.created":
        expires = data.get("expires_at")
        until = f", valid until {_clock(expires)}" if isinstance(expires, int | float) else ""
        return (f"enrollment token created for "
                f"{html.escape(_kind_article(str(data.get('kind', 'agent'))))}{until}")
    if kind == "hub.started":
        return f"hub started (role {html.escape(str(data.get('role', '?')))})"
    if kind == "hub.stopped":
        return "hub stopped"
    if kind == "task.render_part":  # a farm part's move: which part, and to what
        moved = data.get("part_state") or (f"given job {data['job']}" if data.get("job")
                                           else "moved")
        why = f": {html.escape(str(data['reason']))}" if data.get("reason") else ""
        return (f"task {who} render part {int(data.get('part', 0)) + 1} "
                f"{html.escape(str(moved))}{why}")
    if kind == "task.render_reassigned":
        return (f"task {who} render part {int(data.get('part', 0)) + 1} lost, its chunks go "
                f"to {html.escape(str(data.get('to')))}: "
                f"{html.escape(str(data.get('reason', '')))}")
    if kind.startswith("task."):
        what = html.escape(kind.removeprefix("task.").replace("_", " "))
        why = data.get("reason") or data.get("component") or ""
        detail = f": {html.escape(str(why))}" if why else ""
        state = data.get("state")
        now = f" (task {html.escape(str(state))})" if state else ""
        return f"task {who} {what}{detail}{now}"
    if kind.startswith("job."):
        what = html.escape(kind.removeprefix("job.").replace("_", " "))
        why = data.get("error") or data.get("reason") or ""
        detail = f": {html.escape(str(why))}" if why else ""
        runner = data.get("runner")
        on = f" on {html.escape(str(runner))}" if runner else ""
        state = data.get("state")
        now = f" (job {html.escape(str(state))}{on})" if state else ""
        return f"job {who} {what}{detail}{now}"
    if kind == "runner.state":
        return f"runner {who} {html.escape(str(data.get('phase', '')))}"
    if kind == "runner.inventory":
        changed = ", ".join(str(c) for c in data.get("changed") or [])
        what = "its full hardware inventory" if data.get("full") else (
            f"hardware changes ({html.escape(changed)})" if changed else "its hardware")
        return f"runner {who} reported {what}"
    if kind == "runner.revoked":
        return f"runner {who} revoked: its secret is refused from now on"
    if kind == "node.linked":
        return f"node {who} linked: its flows are listed"
    if kind == "node.unregistered":
        return f"node {who} unregistered"
    return f"{html.escape(kind)} {who}"


#: Events too frequent for a log a person reads.
QUIET = frozenset({"task.render_progress", "task.play_position", "task.render_assembly"})


def is_quiet(event: Mapping[str, Any]) -> bool:
    """Progress ticks: a progress bar shows them; here they would drown the rest. A farm
    part's move is kept when it changes the part's state (started, done, lost, ...)."""
    kind = event.get("type")
    data = event.get("data") or {}
    if kind in QUIET:
        return True
    if kind == "task.render_part":
        return "part_state" not in data and "job" not in data
    return kind == "job.report" and data.get("event") == "progress"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def timestamp(epoch: float, now: float | None = None) -> str:
    """``12:03:04.123`` today; with the date for older events (the backlog)."""
    moment = datetime.fromtimestamp(epoch)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@dataclass(slots=True)
class Line:
    """One kept line: its category, its text lower-cased for the search, its rich text."""

    category: str
    haystack: str
    rich: str


class EventLogView(QWidget):
    """Capped, filterable, auto-following log of hub events and console notes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ring: deque[Line] = deque()
        self._category: str | None = None
        self._needle = ""
        self._matching = 0  # lines in the ring that match the filter
        self._pending: deque[str] = deque()  # matching lines not in the text yet
        self._in_text = 0  # lines in the text (all match the filter)
        self._drop_front = 0  # lines to take off the text's top (they left the ring)
        self._flush_due = False

        self.kind_filter = QComboBox()
        self.kind_filter.setObjectName("eventKindFilter")
        self.kind_filter.addItem("All kinds", None)
        for key, label, _ in CATEGORIES:
            self.kind_filter.addItem(label, key)
        self.kind_filter.setToolTip(
            "Show only one kind of line: components (registrations, health, config), tasks, "
            "jobs, runners, flows and nodes, or the console's own notes")
        self.kind_filter.currentIndexChanged.connect(self._on_filter_changed)
        self.search = QLineEdit()
        self.search.setObjectName("eventSearch")
        self.search.setPlaceholderText("Search events")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Show only lines containing this text (any case)")
        self.search.setMinimumWidth(160)
        self.search.setMaximumWidth(360)
        self.search.textChanged.connect(self._search_timer_start)
        self.count_label = QLabel()
        self.count_label.setObjectName("eventCount")
        self.count_label.setToolTip(f"Lines matching the filter, of the last {RING_SIZE:,} kept")
        self.clear_filter_button = QPushButton("Clear filter")
        self.clear_filter_button.setToolTip("Show every kind of line again and empty the search")
        self.clear_filter_button.clicked.connect(self.clear_filter)

        self.text = QPlainTextEdit()
        self.text.setObjectName("eventText")
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(RING_SIZE)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("Hub events appear here as they happen.")
        self.text.setToolTip(
            f"Recent hub events, newest last (the last {RING_SIZE:,} are kept). "
            "Registrations and health changes carry their reason."
        )
        self.text.setMinimumHeight(60)

        #: The panel's heading, at the start of the filter bar (styled by the window).
        self.title = QLabel("Events")
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(6)
        bar.addWidget(self.title)
        bar.addSpacing(12)
        bar.addWidget(self.kind_filter)
        bar.addWidget(self.search, 1)
        bar.addStretch(1)
        bar.addWidget(self.count_label)
        bar.addWidget(self.clear_filter_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(bar)
        layout.addWidget(self.text, 1)

        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self.flush)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._on_filter_changed)
        self._update_count()

    # -- feeding ----------------------------------------------------------------------

    def append_event(self, event: Mapping[str, Any]) -> None:
        if is_quiet(event):
            return
        when = timestamp(float(event.get("ts", 0.0)))
        self._add(category(str(event.get("type", ""))),
                  f'<span style="color:#8c959f">{when}</span>&nbsp;&nbsp;{describe(event)}')

    def append_note(self, text: str) -> None:
        """A line from the console itself (not a hub event), in italics."""
        self._add("note", f"<i>{html.escape(text)}</i>")

    # -- reading ----------------------------------------------------------------------

    def lines(self) -> list[str]:
        """The shown text, one string per line (for tests and copy-paste)."""
        self.flush()
        return self.text.toPlainText().splitlines()

    def counts(self) -> tuple[int, int]:
        """``(shown, kept)``: lines matching the filter, and lines kept in all (the label
        says the same at the next flush, at most :data:`FLUSH_MS` later)."""
        return self._matching, len(self._ring)

    def filtering(self) -> bool:
        return self._category is not None or bool(self._needle)

    # -- the filter -------------------------------------------------------------------

    def set_filter(self, kind: str | None = None, text: str = "") -> None:
        """Show only lines of this category containing ``text`` (None and "": all)."""
        index = self.kind_filter.findData(kind)
        self.kind_filter.blockSignals(True)
        self.kind_filter.setCurrentIndex(max(index, 0))
        self.kind_filter.blockSignals(False)
        self.search.blockSignals(True)
        self.search.setText(text)
        self.search.blockSignals(False)
        self._on_filter_changed()

    def clear_filter(self) -> None:
        self.set_filter(None, "")

    def _search_timer_start(self) -> None:
        self._search_timer.start()

    def _on_filter_changed(self) -> None:
        """Re-render from the ring: the one full pass, done only when the filter changes."""
        self._search_timer.stop()
        self._category = self.kind_filter.currentData()
        self._needle = self.search.text().strip().lower()
        matching = [line.rich for line in self._ring if self._matches(line)]
        self._matching = len(matching)
        self._pending.clear()
        self._drop_front = 0
        self._flush_timer.stop()
        self._flush_due = False
        self.text.document().setHtml("".join(f"<p>{rich}</p>" for rich in matching))
        self._in_text = len(matching)
        self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())
        self._update_count()

    def _matches(self, line: Line) -> bool:
        if self._category is not None and line.category != self._category:
            return False
        return not self._needle or self._needle in line.haystack

    # -- incremental appends ----------------------------------------------------------

    def _add(self, category: str, rich: str) -> None:
        line = Line(category, html.unescape(_TAG.sub("", rich)).lower(), rich)
        if len(self._ring) >= RING_SIZE:
            gone = self._ring.popleft()
            if self._matches(gone):
                self._matching -= 1
                if self._in_text - self._drop_front > 0:
                    self._drop_front += 1
                else:
                    self._pending.popleft()
        self._ring.append(line)
        if self._matches(line):
            self._matching += 1
            self._pending.append(rich)
        if not self._flush_due:  # the count moves on even when the line is filtered out
            self._flush_due = True
            self._flush_timer.start()

    def flush(self) -> None:
        """Put the waiting lines into the text, in one edit, following the end."""
        self._flush_timer.stop()
        self._flush_due = False
        self._update_count()
        if not self._pending and not self._drop_front:
            return
        bar = self.text.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 4
        document = self.text.document()
        cursor = QTextCursor(document)
        cursor.beginEditBlock()
        if self._drop_front:
            if self._drop_front >= self._in_text:
                document.clear()
                self._in_text = 0
            else:
                cursor.movePosition(QTextCursor.MoveOperation.Start)
                cursor.movePosition(QTextCursor.MoveOperation.NextBlock,
                                    QTextCursor.MoveMode.KeepAnchor, self._drop_front)
                cursor.removeSelectedText()
                self._in_text -= self._drop_front
            self._drop_front = 0
        cursor.movePosition(QTextCursor.MoveOperation.End)
        for rich in self._pending:
            if self._in_text:
                cursor.insertBlock()
            cursor.insertHtml(rich)
            self._in_text += 1
        cursor.endEditBlock()
        self._pending.clear()
        self._in_text = min(self._in_text, RING_SIZE)
        if following:
            bar.setValue(bar.maximum())

    def _update_count(self) -> None:
        shown, kept = self.counts()
        self.count_label.setText(f"showing {shown:,} of {kept:,}")
        self.clear_filter_button.setEnabled(self.filtering())
