"""Add a remote agent…: the commands that enrol an agent on another machine, to copy.

An agent on this machine is one click away (the Agents tab, or *Start a local studio*).
One on another machine needs two commands run there: ask the hub for a one-time
enrollment token with the operator token, then start the agent with it. This dialog shows
both for the kind the operator picks, with a Copy button each; it is non-modal, so the
console keeps running while the operator works in a terminal. Neither command puts a token
on a command line (see :mod:`ui.shell.commands`); the agent's carries ``--pin`` when the
hub serves TLS, so it trusts exactly the certificate this console is attached to.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.core import health_style
from ui.core.typography import fixed_font
from ui.shell.commands import agent_command, enrollment_command

#: The agent kinds an operator starts by hand, with the name the commands suggest.
KINDS = (("engine", "engine-1"), ("driver", "driver-1"), ("runner", "runner-1"),
         ("node", "node-1"))


class RemoteAgentDialog(QDialog):
    """Pick a kind; copy the enrollment command and the agent command."""

    def __init__(self, base_url: str, token_path: str, hub_machine: str | None = None,
                 parent: QWidget | None = None, pin: str = "") -> None:
        """``pin``: the fingerprint of the certificate the hub serves ("" on plain HTTP)."""
        super().__init__(parent)
        self.setWindowTitle("Add a remote agent")
        self.setObjectName("remoteAgentDialog")
        self.base_url = base_url
        self.token_path = token_path
        self.pin = pin
        self.kind = QComboBox()
        for kind, _name in KINDS:
            self.kind.addItem(kind)
        self.kind.currentIndexChanged.connect(self._update)
        where = (f" on the hub's machine, <b>{hub_machine}</b> (or point <code>cat</code> "
                 "at your copy of it)" if hub_machine else "")
        intro = QLabel(
            "On the machine that will run the agent: create a one-time enrollment token "
            f"with the operator token from <code>{token_path}</code>{where}, then start the "
            "agent with the token it returns in place of TOKEN (needed on its first start "
            "only; the agent keeps its own credentials after that). The token goes in the "
            "agent's environment, never on its command line, where any local user could "
            "read it."
            + (" <code>--pin</code> is the fingerprint of the hub's certificate: the agent "
               "checks it before it sends anything." if pin else ""))
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        self.enroll_text = self._command_label()
        self.agent_text = self._command_label()
        outro = QLabel(
            f"It appears in Components as {health_style.dot_html('half_open')} half-open, "
            f"then {health_style.dot_html('up')} up once it answers its first health check.")
        outro.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Kind:", self.kind)
        form.addRow("1. Token:", self._with_copy(self.enroll_text, "the enrollment command"))
        form.addRow("2. Agent:", self._with_copy(self.agent_text, "the agent command"))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(outro)
        layout.addWidget(buttons)
        self.setMinimumWidth(720)
        self._update()

    def commands(self) -> tuple[str, str]:
        """The two commands shown now: enrollment, then the agent."""
        return self.enroll_text.text(), self.agent_text.text()

    def _update(self) -> None:
        kind, name = KINDS[max(0, self.kind.currentIndex())]
        self.enroll_text.setText(enrollment_command(self.base_url, self.token_path, kind))
        self.agent_text.setText(agent_command(self.base_url, kind, name, self.pin))

    @staticmethod
    def _command_label() -> QLabel:
        label = QLabel()
        label.setFont(fixed_font())
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                      | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        label.setStyleSheet("background: palette(base); border: 1px solid palette(mid);"
                            " border-radius: 4px; padding: 6px 8px;")
        return label

    @staticmethod
    def _with_copy(label: QLabel, what: str) -> QHBoxLayout:
        copy = QPushButton("Copy")
        copy.setToolTip(f"Copy {what}")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(label.text()))
        row = QHBoxLayout()
        row.addWidget(label, 1)
        row.addWidget(copy, 0, Qt.AlignmentFlag.AlignTop)
        return row
