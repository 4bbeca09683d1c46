"""Which hub the console is attached to: remembered hubs, File ▸ Connect to hub…, Recent hubs.

The console runs over its own embedded hub or over a remote one (``controlroom --hub``).
:class:`HubHistory` remembers, in QSettings, the mode of the last session and the URLs of
the remote hubs used (with the path of the token file, if one was used) — never a token.
:class:`ConnectDialog` is the non-modal form that checks a hub's address and token before
anything changes; :class:`HubMenu` puts it and the recent hubs in the File menu. A hub
chosen there is handed to the window as :class:`HubChoice` (``MainWindow.switch_to``); the
window closes as on quit, and ``app.desktop`` opens it again attached to the new hub, in
the same process, so the token never leaves memory.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from backend.client import (
    TOKEN_ENV,
    AttachError,
    HubInfo,
    hub_slug,
    normalize_url,
    probe,
    read_token_file,
)
from backend.tls import parse_pin
from ui.core import health_style

_GROUP = "Hub"
#: Environment variable that may carry the operator token (``controlroom --hub``).
#: Remote hubs kept in File ▸ Recent hubs.
MAX_RECENT = 8


@dataclass(frozen=True)
class HubChoice:
    """The hub to attach to: ``url`` None is this console's own, embedded hub."""

    url: str | None = None
    token: str = field(default="", repr=False)  # in memory only: never logged, never saved
    token_file: Path | None = None
    #: The hub certificate's fingerprint (public; remembered per hub), or "" for none.
    pin: str = ""

    @property
    def embedded(self) -> bool:
        return self.url is None

    def resolve_token(self) -> str:
        """The operator token: from the file, else as given, else ``$CONTROLROOM_TOKEN``."""
        if self.token_file is not None:
            return read_token_file(self.token_file)
        return self.token or os.environ.get(TOKEN_ENV, "").strip()


class HubHistory:
    """The hubs this console used, in QSettings (URLs and token-file paths, never tokens)."""

    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    def remember(self, choice: HubChoice) -> None:
        s = self.settings
        s.setValue(f"{_GROUP}/mode", "embedded" if choice.url is None else "remote")
        if choice.url is not None:
            s.setValue(f"{_GROUP}/url", choice.url)
            recent = [u for u in self.recent() if u != choice.url]
            s.setValue(f"{_GROUP}/recent", [choice.url, *recent][:MAX_RECENT])
            for key, value in ((f"{_GROUP}/token_file/{hub_slug(choice.url)}",
                                choice.token_file),
                               (f"{_GROUP}/pin/{hub_slug(choice.url)}", choice.pin)):
                if value:
                    s.setValue(key, str(value))
                else:
                    s.remove(key)
        s.sync()

    def last_mode(self) -> str:
        """``embedded`` or ``remote``: how the last session was attached."""
        return "remote" if self.settings.value(f"{_GROUP}/mode") == "remote" else "embedded"

    def last_url(self) -> str | None:
        value = self.settings.value(f"{_GROUP}/url")
        return str(value) if value else None

    def recent(self) -> list[str]:
        value = self.settings.value(f"{_GROUP}/recent", [])
        if isinstance(value, str):  # an INI file gives a one-item list back as a string
            return [value] if value else []
        return [str(v) for v in value if v] if isinstance(value, list) else []

    def token_file_for(self, url: str) -> str:
        value = self.settings.value(f"{_GROUP}/token_file/{hub_slug(url)}")
        return str(value) if value else ""

    def pin_for(self, url: str) -> str:
        value = self.settings.value(f"{_GROUP}/pin/{hub_slug(url)}")
        return str(value) if value else ""


class ConnectDialog(QDialog):
    """URL and token (or token file) of a hub, checked before the console switches to it."""

    #: ``(HubChoice, HubInfo)``: the hub answered and took the token.
    attached = Signal(object, object)

    def __init__(self, history: HubHistory, parent: QWidget | None = None,
                 url: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to hub")
        self.setModal(False)
        self.setMinimumWidth(560)
        self.history = history
        self.checking: asyncio.Task[HubInfo] | None = None

        self.url = QComboBox()
        self.url.setEditable(True)
        self.url.addItems(history.recent())
        self.url.setCurrentText(url or history.last_url() or "http://127.0.0.1:8750")
        self.url.setToolTip("The hub's base URL, as in DATA/hub.url on its machine, "
                            "e.g. http://studio:8750")
        line = self.url.lineEdit()
        if line is not None:
            line.setPlaceholderText("http://HOST:8750")

        self.use_file = QRadioButton("Token file:")
        self.use_file.setToolTip("A copy of the hub's DATA/admin.token on this machine; "
                                 "only its path is remembered")
        self.token_file = QLineEdit()
        self.token_file.setPlaceholderText("path to a copy of the hub's admin.token")
        self.token_file.setToolTip(self.use_file.toolTip())
        self.browse = QPushButton("Browse…")
        self.browse.setToolTip("Choose the token file")
        self.browse.clicked.connect(self._browse)
        self.use_token = QRadioButton("Token:")
        self.use_token.setToolTip("The hub's operator token, pasted; kept in memory only")
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("the contents of the hub's DATA/admin.token")
        self.token.setToolTip(self.use_token.toolTip())
        self.pin = QLineEdit()
        self.pin.setPlaceholderText("sha256:… (only for an https:// hub with its own certificate)")
        self.pin.setToolTip("The fingerprint of the hub's certificate: `controlroom tls show` "
                            "on the hub's machine prints it. Leave empty for a plain http:// "
                            "hub on loopback or a certificate of a CA this system trusts")
        self.use_file.toggled.connect(self._update_enabled)
        file_row = QHBoxLayout()
        file_row.addWidget(self.token_file, 1)
        file_row.addWidget(self.browse)

        form = QFormLayout()
        form.addRow("Hub URL:", self.url)
        form.addRow(self.use_file, file_row)
        form.addRow(self.use_token, self.token)
        form.addRow("Certificate pin:", self.pin)
        # U+2011, a hyphen Qt never breaks a line at: "--data-" / "dir" reads badly.
        hint = QLabel("The operator token is in <code>DATA/admin.token</code> on the hub's "
                      "machine (DATA is its <code>\u2011\u2011data\u2011dir</code>). The "
                      "hub must listen on an address this machine reaches "
                      "(<code>\u2011\u2011host 0.0.0.0</code>).")
        hint.setWordWrap(True)
        self.status = QLabel("")
        self.status.setObjectName("connectStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.buttons = QDialogButtonBox()
        self.connect_button = self.buttons.addButton(
            "Check and attach", QDialogButtonBox.ButtonRole.AcceptRole)
        self.connect_button.setToolTip("Check the address and token, then reopen the "
                                       "console attached to this hub")
        self.connect_button.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.check)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        remembered = history.token_file_for(self.url.currentText())
        self.token_file.setText(remembered)
        self.pin.setText(history.pin_for(self.url.currentText()))
        (self.use_file if remembered or not os.environ.get(TOKEN_ENV) else
         self.use_token).setChecked(True)
        self.url.currentTextChanged.connect(self._on_url)
        self._update_enabled()

    def choice(self) -> HubChoice:
        """What the form says (raises :class:`AttachError` for a bad URL or pin)."""
        url = normalize_url(self.url.currentText())
        pin = self.pin.text().strip()
        if pin:
            try:
                pin = parse_pin(pin)
            except ValueError as exc:
                raise AttachError(str(exc)) from None
        if self.use_file.isChecked():
            path = self.token_file.text().strip()
            if not path:
                raise AttachError("choose the token file (a copy of the hub's "
                                     "DATA/admin.token), or paste the token instead")
            return HubChoice(url, token_file=Path(path).expanduser(), pin=pin)
        return HubChoice(url, token=self.token.text().strip(), pin=pin)

    def check(self) -> asyncio.Task[HubInfo] | None:
        """Probe the hub without blocking; the answer is shown here, the form kept."""
        if self.checking is not None and not self.checking.done():
            return self.checking
        try:
            choice = self.choice()
            token = choice.resolve_token()
        except AttachError as exc:
            self._show_error(exc.message)
            return None
        self.connect_button.setEnabled(False)
        self.status.setText(f"Checking {choice.url}…")
        self.status.setStyleSheet("")
        task = asyncio.get_running_loop().create_task(
            probe(str(choice.url), token, pin=choice.pin))
        task.add_done_callback(lambda done: self._on_checked(done, choice, token))
        self.checking = task
        return task

    def _on_checked(self, task: asyncio.Task[HubInfo], choice: HubChoice, token: str) -> None:
        self.connect_button.setEnabled(True)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._show_error(exc.message if isinstance(exc, AttachError)
                             else f"{type(exc).__name__}: {exc}")
            return
        info = task.result()
        self.status.setStyleSheet("")
        self.status.setText(f"{health_style.dot_html('up')} Control Room {info.version} on "
                            f"{info.host} ({info.role}) took the token; attaching…")
        attached = HubChoice(info.url, token=token, token_file=choice.token_file,
                             pin=choice.pin)
        self.attached.emit(attached, info)
        self.accept()

    def _show_error(self, message: str) -> None:
        self.status.setStyleSheet(f"color: {health_style.colour_name('down')}")
        self.status.setText(message[:1].upper() + message[1:])

    def _on_url(self, url: str) -> None:
        """A remembered hub brings back its token file's path."""
        self.pin.setText(self.history.pin_for(url.strip()))
        remembered = self.history.token_file_for(url.strip())
        if remembered:
            self.token_file.setText(remembered)
            self.use_file.setChecked(True)

    def _update_enabled(self) -> None:
        by_file = self.use_file.isChecked()
        self.token_file.setEnabled(by_file)
        self.browse.setEnabled(by_file)
        self.token.setEnabled(not by_file)

    def _browse(self) -> None:
        dialog = QFileDialog(self, "The hub's operator token (a copy of its admin.token)",
                             self.token_file.text() or str(Path.home()))
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.token_file.setText)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # not exec(): no nested event loop


class HubMenu(QObject):
    """File ▸ Connect to hub… and File ▸ Recent hubs, for one window.

    It only says which hub the operator chose (:attr:`chosen`); the window decides what
    that means (it closes, and the composition root opens it again on that hub).
    """

    #: The operator chose a hub (:class:`HubChoice`).
    chosen = Signal(object)

    def __init__(self, window: QWidget, settings: QSettings, current_url: str | None) -> None:
        """``current_url``: the remote hub the window is attached to; None if embedded."""
        super().__init__(window)
        self.window = window
        self.current_url = current_url
        self.history = HubHistory(settings)
        self.dialog: ConnectDialog | None = None
        self.connect_action = QAction("&Connect to Hub…", window)
        self.connect_action.setStatusTip("Attach this console to another hub (a remote one, "
                                         "started with controlroom --headless)")
        self.connect_action.triggered.connect(lambda: self.open_dialog())
        self.recent_menu = QMenu("&Recent Hubs", window)
        self.recent_menu.setToolTipsVisible(True)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._fill_recent()

    def install(self, menu: QMenu) -> None:
        menu.addAction(self.connect_action)
        menu.addMenu(self.recent_menu)

    def open_dialog(self, url: str | None = None) -> ConnectDialog:
        """The non-modal dialog (one at a time), prefilled with ``url`` or the last hub."""
        if self.dialog is not None:
            self.dialog.close()
        dialog = ConnectDialog(self.history, self.window, url)
        dialog.attached.connect(lambda choice, _info: self.switch(choice))
        dialog.finished.connect(lambda _r: dialog.deleteLater())
        self.dialog = dialog
        dialog.show()
        return dialog

    def switch(self, choice: HubChoice) -> None:
        """Hand the choice to whoever listens (the window)."""
        self.chosen.emit(choice)

    def _fill_recent(self) -> None:
        menu = self.recent_menu
        menu.clear()
        current = self.current_url
        own = menu.addAction("This console's own hub (embedded)")
        own.setToolTip("Run the hub and node service inside this console again")
        own.setCheckable(True)
        own.setChecked(current is None)
        own.setEnabled(current is not None)
        own.triggered.connect(lambda: self.switch(HubChoice()))
        recent = self.history.recent()
        if recent:
            menu.addSeparator()
        for url in recent:
            action = menu.addAction(url)
            action.setCheckable(True)
            action.setChecked(url == current)
            action.setToolTip(f"Attach to {url} (asks for its token)")
            action.triggered.connect(lambda _checked=False, u=url: self.open_dialog(u))
