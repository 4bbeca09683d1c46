"""Non-modal error notifications: a stack of dismissable bars along the window's top.

An error never opens a modal box (that would nest an event loop inside the asyncio loop
and stop the meters); it appears here with its title, a short message, and the full text
behind "Details". The newest is on top; at most :data:`MAX_SHOWN` stay, older ones go.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.core.typography import escape

MAX_SHOWN = 3


class Notification(QFrame):
    def __init__(self, title: str, message: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notification")
        self.title = title
        self.message = message
        first = message.splitlines()[0] if message else ""
        if len(first) > 160:
            first = first[:157] + "…"
        self.label = QLabel(f"<b>{escape(title)}</b>&nbsp; {escape(first)}")
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        self.details = QLabel(message)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.hide()
        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Show the whole message")
        self.details_button.toggled.connect(self.details.setVisible)
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setToolTip("Hide this notification")
        self.dismiss_button.clicked.connect(self.dismiss)
        row = QHBoxLayout()
        row.addWidget(self.label, 1)
        row.addWidget(self.details_button)
        row.addWidget(self.dismiss_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 6, 4)
        layout.addLayout(row)
        layout.addWidget(self.details)
        self.setStyleSheet(
            "QFrame#notification { background: #fdecea; border: 1px solid #d9534f;"
            " border-radius: 4px; } QFrame#notification QLabel { color: #611a15; }"
        )

    def dismiss(self) -> None:
        self.hide()
        self.deleteLater()


class NotificationArea(QWidget):
    """Where notifications appear; empty (and zero height) when there are none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)

    def error(self, title: str, message: str) -> Notification:
        note = Notification(title, message)
        self._layout.insertWidget(0, note)
        shown = self.shown()
        for old in shown[MAX_SHOWN:]:
            old.dismiss()
        return note

    def shown(self) -> list[Notification]:
        notes = []
        for i in range(self._layout.count()):
            item = self._layout.itemAt(i)
            widget = item.widget() if item is not None else None
            if isinstance(widget, Notification) and not widget.isHidden():
                notes.append(widget)
        return notes
