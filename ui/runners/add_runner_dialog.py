"""The "Add runner…" dialog: a fresh one-time token and the commands for the other machine.

Non-modal (``show()``, never ``exec()``: a nested event loop would stall the shared asyncio
loop). Each time it opens it asks the hub for a new enrollment token of kind ``runner``
over HTTP, shows it with its expiry and a Copy button, and builds the exact commands of
docs/runners.md around it (``controlroom runner register ...``, then ``runner run`` or
``runner install``), so what the operator pastes on the other machine is what works. The
token goes in the register command's environment (``CONTROLROOM_TOKEN=…``), never on its
command line, and ``--pin`` carries the hub certificate's fingerprint when the hub serves
TLS (the enrollment's ``pin``). It watches the runners list and says when that runner has
registered and when it is up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.core import health_style
from ui.core.bridge import HubBridge
from ui.core.coroutines import CoroutineRunner
from ui.core.shell import with_token

OK_COLOUR = "#2da44e"
WARNING_COLOUR = "#9a6700"  # amber dark enough to read as text


def _mono(label: QLabel) -> QLabel:
    label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                  | Qt.TextInteractionFlag.TextSelectableByKeyboard)
    label.setObjectName("command")
    return label


def reachable_url(base_url: str) -> tuple[str, str]:
    """The hub address another machine should use, and a warning when there is none.

    A hub bound to a wildcard address shows ``0.0.0.0`` in its URL, which no other
    machine can dial: this machine's host name is offered instead. A loopback address
    cannot be reached from elsewhere at all; the operator is told how to fix that.
    """
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    port = f":{parts.port}" if parts.port else ""
    if address is not None and address.is_unspecified:
        name = socket.gethostname()
        return urlunsplit((parts.scheme, f"{name}{port}", "", "", "")), ""
    if host == "localhost" or (address is not None and address.is_loopback):
        return base_url, (
            f"This hub listens on {host} only, which other machines cannot reach. Start "
            "the console with --host 0.0.0.0 (or this machine's network address) and put "
            "that address here.")
    return base_url, ""


def runner_commands(hub_url: str, token: str, name: str, labels: str,
                    pin: str = "") -> list[str]:
    """``register`` with the token (in its environment) and the hub's ``pin`` if it has
    one, then ``run`` (or ``install``), per docs/runners.md."""
    register = ["controlroom", "runner", "register", "--hub", hub_url, "--name", name]
    if labels.strip():
        register += ["--labels", labels.strip()]
    if pin:
        register += ["--pin", pin]
    return [with_token(token, register), "controlroom runner run",
            "controlroom runner install"]


class AddRunnerDialog(QDialog):
    """A fresh enrollment token and the commands that enroll another machine with it."""

    def __init__(self, bridge: HubBridge, actions: CoroutineRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.commands = actions
        self.enrollment: dict[str, Any] | None = None
        self._known: set[str] = set()
        self.setWindowTitle("Add a runner")
        self.setModal(False)
        self.setMinimumWidth(640)

        intro = QLabel(
            "A runner is a machine that takes jobs from this hub (the render farm). "
            "Enroll it once with this one-time token; it keeps its own credentials after "
            "that and reconnects by itself.")
        intro.setWordWrap(True)
        hub_url, warning = reachable_url(bridge.base_url)
        self.name_edit = QLineEdit("runner-1")
        self.name_edit.setToolTip("The runner's name on the hub (letters, digits, . _ -)")
        self.hub_edit = QLineEdit(hub_url)
        self.hub_edit.setToolTip("The address the other machine uses to reach this hub")
        self.labels_edit = QLineEdit()
        self.labels_edit.setPlaceholderText("optional, e.g. linux,gpu")
        self.labels_edit.setToolTip("Jobs that need a label go only to runners that have it")
        self.hub_warning = QLabel(warning)
        self.hub_warning.setWordWrap(True)
        self.hub_warning.setStyleSheet(f"color: {WARNING_COLOUR}")
        self.hub_warning.setVisible(bool(warning))
        form = QFormLayout()
        form.addRow("Runner name:", self.name_edit)
        form.addRow("Hub address:", self.hub_edit)
        form.addRow("Labels:", self.labels_edit)

        self.token_label = _mono(QLabel("Creating a token…"))
        self.token_label.setToolTip("Single use; shown once. Anyone holding it can enroll a "
                                    "runner until it expires or is used.")
        self.copy_token_button = QPushButton("Copy")
        self.copy_token_button.setToolTip("Copy the token to the clipboard")
        self.copy_token_button.setEnabled(False)
        self.copy_token_button.clicked.connect(
            lambda: self._copy(self.enrollment["token"] if self.enrollment else ""))
        self.new_token_button = QPushButton("New token")
        self.new_token_button.setToolTip("Create another one-time token (a used or expired "
                                         "one cannot enroll again)")
        self.new_token_button.clicked.connect(self.new_token)
        self.expiry_label = QLabel()
        self.expiry_label.setWordWrap(True)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token_label, 1)
        token_row.addWidget(self.copy_token_button)
        token_row.addWidget(self.new_token_button)

        self.command_labels: list[QLabel] = []
        steps = QVBoxLayout()
        for text, tip in (
            ("1. On the other machine, with Control Room installed, register it:",
             "Copy the register command"),
            ("2. Then start it in that terminal (Ctrl-C signs it off; its jobs keep "
             "running):", "Copy the run command"),
            ("…or, instead, install it as an OS service that starts at boot and restarts "
             "after a crash (systemd, launchd or a Windows service; needs administrator "
             "rights):", "Copy the install command"),
        ):
            step = QLabel(text)
            step.setWordWrap(True)
            command = _mono(QLabel())
            copy = QPushButton("Copy")
            copy.setToolTip(tip)
            copy.clicked.connect(lambda _=False, c=command: self._copy(c.text()))
            row = QHBoxLayout()
            row.addWidget(command, 1)
            row.addWidget(copy, 0, Qt.AlignmentFlag.AlignTop)
            steps.addWidget(step)
            steps.addLayout(row)
            self.command_labels.append(command)

        self.joined_label = QLabel(
            f"The runner appears in the Runners table as {health_style.dot_html('half_open')}"
            f" half-open, then {health_style.dot_html('up')} up once it is ready.")
        self.joined_label.setWordWrap(True)
        close = QPushButton("Close")
        close.setToolTip("Close this window; an unused token simply expires")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.hub_warning)
        layout.addWidget(QLabel("<b>One-time enrollment token</b>"))
        layout.addLayout(token_row)
        layout.addWidget(self.expiry_label)
        layout.addSpacing(6)
        layout.addLayout(steps)
        layout.addSpacing(6)
        layout.addWidget(self.joined_label)
        layout.addLayout(buttons)
        self.setStyleSheet("QLabel#command { background: palette(base); border: 1px solid "
                           "palette(mid); border-radius: 4px; padding: 5px 7px; }")
        for edit in (self.name_edit, self.hub_edit, self.labels_edit):
            edit.textChanged.connect(self._update_commands)
        self._update_commands()

    def open_fresh(self, runner_ids: Sequence[str]) -> asyncio.Task[Any]:
        """Show the dialog with a free runner name and a token made just now."""
        self._known = set(runner_ids)
        n = 1
        while f"runner-{n}" in self._known:
            n += 1
        self.name_edit.setText(f"runner-{n}")
        self.show()
        self.raise_()
        self.activateWindow()
        return self.new_token()

    def new_token(self) -> asyncio.Task[Any]:
        self.enrollment = None
        self.token_label.setText("Creating a token…")
        self.copy_token_button.setEnabled(False)
        self.new_token_button.setEnabled(False)
        self.expiry_label.clear()
        self._update_commands()

        async def create() -> dict[str, Any]:
            try:
                return await self.bridge.new_enrollment("runner")
            finally:
                self.new_token_button.setEnabled(True)

        return self.commands.run("Create an enrollment token", create(),
                                 on_done=self._on_token)

    def _on_token(self, enrollment: dict[str, Any]) -> None:
        self.enrollment = enrollment
        self.token_label.setText(str(enrollment["token"]))
        self.copy_token_button.setEnabled(True)
        expires = float(enrollment["expires_at"])
        minutes = max(0, round((expires - time.time()) / 60))
        self.expiry_label.setText(
            f"Single use. Expires at {time.strftime('%H:%M', time.localtime(expires))} "
            f"(in {minutes} min); after that, create a new one.")
        self._update_commands()

    def pin(self) -> str:
        """The hub certificate's fingerprint: the enrollment's, else the one this console
        is attached with ("" on plain HTTP)."""
        pin = self.enrollment.get("pin") if self.enrollment else None
        return str(pin or self.bridge.info.pin or "")

    def _update_commands(self) -> None:
        token = str(self.enrollment["token"]) if self.enrollment else "TOKEN"
        texts = runner_commands(self.hub_edit.text().strip(), token,
                                self.name_edit.text().strip() or "runner-1",
                                self.labels_edit.text(), self.pin())
        for label, text in zip(self.command_labels, texts, strict=True):
            label.setText(text)

    def command_text(self, step: int) -> str:
        return self.command_labels[step].text()

    def note_runners(self, runners: Sequence[dict[str, Any]]) -> None:
        """Say so once the runner being enrolled has joined the hub."""
        name = self.name_edit.text().strip()
        runner = next((r for r in runners if r.get("id") == name), None)
        if runner is None or name in self._known or not self.isVisible():
            return
        state = str(runner.get("state"))
        if state == "down":  # registered (the token is used up) but not running yet
            self.joined_label.setText(
                f"<b>{name} is registered</b> (this token is now used up). Waiting for it "
                f"to start: run <code>controlroom runner run</code> or install the service "
                f"on that machine. {health_style.dot_html(state)} "
                f"{health_style.label(state)}")
            return
        self.joined_label.setText(
            f"<b style='color:{OK_COLOUR}'>✓ {name} has joined the hub</b>: "
            f"{health_style.dot_html(state)} {health_style.label(state)}, "
            f"{runner.get('phase')}. You can close this window.")

    @staticmethod
    def _copy(text: str) -> None:
        QGuiApplication.clipboard().setText(text)
