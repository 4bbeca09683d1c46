"""The recent-events panel: one readable line per hub event, newest last.

:func:`describe` turns an event (``Event.as_json()``) into a sentence an operator reads
without knowing the event types: who registered, which state changed and why. The widget
keeps the newest :data:`MAX_LINES` lines and follows the end unless the operator has
scrolled back to read something.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from ui import health_style

MAX_LINES = 1000


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
    if kind.startswith("task."):
        what = html.escape(kind.removeprefix("task.").replace("_", " "))
        why = data.get("reason") or data.get("component") or ""
        detail = f": {html.escape(str(why))}" if why else ""
        state = data.get("state")
        now = f" (task {html.escape(str(state))})" if state else ""
        return f"task {who} {what}{detail}{now}"
    return f"{html.escape(kind)} {who}"


#: Events too frequent for a log a person reads.
QUIET = frozenset({"task.render_progress", "task.play_position"})


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def timestamp(epoch: float, now: float | None = None) -> str:
    """``12:03:04.123`` today; with the date for older events (the backlog)."""
    moment = datetime.fromtimestamp(epoch)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class EventLogView(QPlainTextEdit):
    """Read-only, capped, auto-following log of hub events."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setPlaceholderText("Hub events appear here as they happen.")
        self.setToolTip(
            f"Recent hub events, newest last (the last {MAX_LINES} are kept). "
            "Registrations and health changes carry their reason."
        )

    def append_event(self, event: Mapping[str, Any]) -> None:
        if event.get("type") in QUIET:
            return  # the task's own progress bar shows these; here they drown the rest
        when = timestamp(float(event.get("ts", 0.0)))
        self._append(f'<span style="color:#8c959f">{when}</span>&nbsp;&nbsp;{describe(event)}')

    def append_note(self, text: str) -> None:
        """A line from the console itself (not a hub event), in italics."""
        self._append(f"<i>{html.escape(text)}</i>")

    def lines(self) -> list[str]:
        """The visible text, one string per line (for tests and copy-paste)."""
        return self.toPlainText().splitlines()

    def _append(self, rich: str) -> None:
        bar = self.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 4
        self.appendHtml(rich)
        if following:
            bar.setValue(bar.maximum())
