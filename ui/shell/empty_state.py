"""The help shown while the hub has no components yet: what to run to enrol and start an agent,
with buttons that copy the commands.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.core import health_style
from ui.core.typography import fixed_font, title_font
from ui.shell.commands import agent_command, enrollment_command


class EmptyState(QFrame):
    """What the tree area shows while no component has registered: how to add one."""

    def __init__(self, base_url: str, token_path: str, parent: QWidget | None = None,
                 hub_machine: str | None = None) -> None:
        """``hub_machine``: the remote hub's host name, whose disk holds ``token_path``."""
        super().__init__(parent)
        self.setObjectName("emptyState")
        self.enroll = enrollment_command(base_url, token_path)
        self.agent = agent_command(base_url)

        title = QLabel("No components registered yet")
        title.setFont(title_font(title, 1.35))
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
            f"operator token from <code>{token_path}</code>"
            + (f" on the hub's machine, <b>{hub_machine}</b> (run it there, or point "
               "<code>cat</code> at your copy of the token). The Agents tab spawns agents "
               "on this machine that join the hub without it:" if hub_machine else ":")))
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
        text.setFont(fixed_font())
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
