"""What the Components view shows while the hub has no components: how to get some.

A desktop user should not need a terminal for a first look, so the first offer is one
click: *Start a local studio* (an engine, two instance drivers and a runner on this
machine, enrolled by the console's supervisor without any token to copy). Agents on
other machines need commands run there; *Add a remote agent…* shows them, to copy.
Both enroll agents, which only an operator token may: on a read-only console they are
greyed out with the reason (:class:`ui.core.access.Access`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ui.core import health_style
from ui.core.access import READ_ONLY_COLOUR, Access
from ui.core.typography import mute, title_font
from ui.shell.remote_agent_dialog import RemoteAgentDialog


class EmptyState(QFrame):
    """The Components view's help until the first component registers."""

    #: The operator asked for a local studio (the window has the supervisor to start it).
    start_studio = Signal()

    def __init__(self, base_url: str, token_path: str, parent: QWidget | None = None,
                 hub_machine: str | None = None, can_spawn: bool = True,
                 access: Access | None = None, pin: str = "") -> None:
        """``hub_machine``: the remote hub's host name, whose disk holds ``token_path``;
        ``can_spawn``: this console can start agents on this machine; ``access``: what
        its token may do (an operator's by default); ``pin``: the hub certificate's
        fingerprint, for the agent command ("" on plain HTTP)."""
        super().__init__(parent)
        self.setObjectName("emptyState")
        self.base_url = base_url
        self.token_path = token_path
        self.hub_machine = hub_machine
        self.pin = pin
        access = access or Access()
        self.dialog: RemoteAgentDialog | None = None

        title = QLabel("No components registered yet")
        title.setFont(title_font(title, 1.35))
        intro = QLabel(
            "Components are the agents that join this hub: the audio engine that plays and "
            "renders, instance drivers that host outboard instances, runners that take "
            "jobs, and nodes that run flows.")
        intro.setWordWrap(True)

        self.studio_button = QPushButton("Start a local studio")
        self.studio_button.setObjectName("startStudio")
        self.studio_button.setDefault(True)
        self.studio_button.setToolTip("Start an engine, two instance drivers and a runner on "
                                      "this machine; they join this hub on their own")
        self.studio_button.clicked.connect(self._on_studio)
        self.studio_button.setVisible(can_spawn)
        studio_note = QLabel(
            "An engine, two instance drivers and a runner on this machine, enrolled "
            "automatically. Then Tasks ▸ Try the demo plays the demo task."
            + (f" They join the hub at {base_url}." if hub_machine else ""))
        mute(studio_note)
        studio_note.setWordWrap(True)
        studio_note.setVisible(can_spawn)

        self.remote_button = QPushButton("Add a remote agent…")
        self.remote_button.setToolTip("The two commands that enrol and start an agent on "
                                      "another machine, to copy")
        self.remote_button.clicked.connect(self.open_remote_dialog)
        where = (f"the operator token on the hub's machine, <b>{hub_machine}</b>"
                 if hub_machine else "the operator token")
        remote_note = QLabel(
            "An agent on another machine enrolls once with a one-time token, created with "
            f"{where} (<code>POST /api/v1/enrollments</code>), then registers on every start.")
        remote_note.setWordWrap(True)
        remote_note.setTextFormat(Qt.TextFormat.RichText)
        outro = QLabel(
            f"Each one appears here as {health_style.dot_html('half_open')} half-open, "
            f"then {health_style.dot_html('up')} up once it answers its first health check.")
        outro.setWordWrap(True)

        content = QWidget()
        content.setMaximumWidth(780)  # lines a reader can follow, buttons near their text
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        layout.addWidget(title)
        layout.addWidget(intro)
        if access.read_only:
            self.read_only_note = QLabel(
                f"This console is {access.label}: it shows components as an operator adds "
                "them, but cannot add any itself.")
            self.read_only_note.setObjectName("readOnlyNote")
            self.read_only_note.setWordWrap(True)
            self.read_only_note.setStyleSheet(f"color: {READ_ONLY_COLOUR}")
            layout.addWidget(self.read_only_note)
        for button, note in ((self.studio_button, studio_note),
                             (self.remote_button, remote_note)):
            row = QHBoxLayout()
            row.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
            row.addWidget(note, 1)
            layout.addLayout(row)
        layout.addWidget(outro)
        access.guard(self.studio_button, self.remote_button)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(32, 28, 32, 28)
        outer.addWidget(content, 1, Qt.AlignmentFlag.AlignTop)
        outer.addStretch(0)

    def text(self) -> str:
        """Everything the empty state says, as plain text."""
        return "\n".join(label.text() for label in self.findChildren(QLabel))

    def open_remote_dialog(self) -> RemoteAgentDialog:
        """The commands for an agent on another machine (non-modal, one at a time)."""
        if self.dialog is None or not self.dialog.isVisible():
            dialog = RemoteAgentDialog(self.base_url, self.token_path, self.hub_machine,
                                       self, pin=self.pin)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.destroyed.connect(lambda: setattr(self, "dialog", None))
            self.dialog = dialog
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def studio_stopped(self) -> None:
        """Starting the studio failed (the reason was shown): offer the button again."""
        self.studio_button.setEnabled(True)
        self.studio_button.setText("Start a local studio")

    def _on_studio(self) -> None:
        self.studio_button.setEnabled(False)
        self.studio_button.setText("Starting…")
        self.start_studio.emit()
