"""Desktop mode (the default): the console window over its own hub, or over a remote one.

qasync makes the Qt event loop the asyncio loop, so the embedded servers and the widgets
share one thread and never need locks. The life of the process reads top to bottom in
:func:`main`: attach to a hub (start the embedded host, or check the remote hub's address
and token), open the window, wait for it to close (the window, Ctrl+Q, SIGINT or SIGTERM
all end the same way), then stop everything in reverse order and return. When the operator
picks another hub (File ▸ Connect to Hub…), the window closes as on quit and the loop
opens a new one attached to that hub, in the same process, so the token stays in memory.

In remote mode (``controlroom --hub URL``) no hub or node service runs here: the window
works over the same :class:`ui.core.bridge.HubBridge` as with the embedded hub, agents spawned
from the Agents tab join the remote hub (with enrollment tokens it issues), and closing
leaves the hub running.

Qt is never told to quit while ``main`` runs: quit-on-last-window-closed is off and the
app ends when ``main`` returns, which is what keeps shutdown free of tracebacks
(quitting Qt while ``main`` still awaits ends in "Event loop stopped before Future
completed").
"""

from __future__ import annotations

import os

# Before anything Qt-side is imported: qasync and pyqtgraph pick a binding by these.
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import qasync
from PySide6.QtCore import QCoreApplication, QSettings, Qt
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app import crash
from app.console import embedded_bridge
from backend import __version__
from backend.client import AttachError, hub_slug
from backend.host import Host, HostSettings
from backend.program import resource
from backend.supervisor import Supervisor
from ui.core.bridge import HubBridge
from ui.core.collector import GuiThreadCollector
from ui.shell.hub_choice import HubChoice, HubHistory
from ui.shell.main_window import MainWindow

log = logging.getLogger(__name__)

APP_NAME = "Control Room"
#: QSettings files live under this name (``~/.config/controlroom/`` on Linux).
ORGANISATION = "controlroom"


class QtEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    """qasync's loop, with the async-generator hooks asyncio's own ``run_forever`` installs.

    qasync runs Qt's ``exec()`` instead of asyncio's ``run_forever`` and so never calls
    ``sys.set_asyncgen_hooks``: an async generator abandoned mid-iteration (an HTTP
    stream whose client went away, a streaming proxy cancelled by a disconnect) is then
    finalized by the garbage collector with no loop running, and its clean-up coroutine
    is lost ("Exception ignored in ... aclose"). With the hooks, the loop closes it.
    """

    def run_forever(self) -> None:
        old = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                               finalizer=self._asyncgen_finalizer_hook)
        try:
            super().run_forever()
        finally:
            sys.set_asyncgen_hooks(*old)


def application() -> QApplication:
    """The one QApplication, made high-DPI aware before it exists.

    Qt 6 always scales by the screen's device pixel ratio; the rounding policy must be set
    before the application is created. PassThrough keeps fractional factors (1.25, 1.5)
    instead of rounding them to 1 or 2, so text and the meters are neither tiny nor huge.
    """
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    return QApplication(sys.argv[:1])


def run(settings: HostSettings, hub: str | None = None, token: str | None = None,
        token_file: Path | None = None, local_studio: bool = False, pin: str | None = None
        ) -> int:
    """Build the QApplication, run :func:`main` on a qasync loop, return the exit code.

    ``hub`` attaches the console to a remote hub (with ``token`` or ``token_file``, else
    ``$CONTROLROOM_TOKEN``) instead of starting the embedded one from ``settings``;
    ``local_studio`` starts the local studio as the first window opens.
    """
    app = application()
    QCoreApplication.setApplicationName(APP_NAME)
    QCoreApplication.setOrganizationName(ORGANISATION)
    QCoreApplication.setApplicationVersion(__version__)
    QApplication.setApplicationDisplayName(APP_NAME)
    icon = resource("icons/controlroom.svg")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))  # SVG: sharp at every scale factor
    app.setQuitOnLastWindowClosed(False)
    sys.excepthook = crash.excepthook  # a failing slot is shown, not printed to nowhere
    first = (HubChoice(hub, token=token or "", token_file=token_file, pin=pin or "")
             if hub else HubChoice())
    collector = GuiThreadCollector(app).install()  # Qt objects die on the GUI thread only
    try:
        with asyncio.Runner(loop_factory=lambda: QtEventLoop(app)) as runner:
            return runner.run(main(settings, first, local_studio=local_studio))
    finally:
        collector.uninstall()


async def main(settings: HostSettings, first: HubChoice | None = None,
               ui_settings: QSettings | None = None, local_studio: bool = False) -> int:
    """The whole life of the desktop app; signals are handled from the first moment.

    ``ui_settings`` (window layout, remembered hubs) defaults to the user's QSettings.
    """
    loop = asyncio.get_running_loop()
    quit_requested = _QuitRequest(loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, quit_requested.on_signal, sig)
    try:
        return await _serve(settings, first or HubChoice(), quit_requested,
                            ui_settings if ui_settings is not None else QSettings(),
                            local_studio)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@dataclass
class _Attached:
    """A hub the console is attached to, and what must be stopped when it lets go."""

    choice: HubChoice
    bridge: HubBridge
    agents_root: Path
    host: Host | None = None  # the embedded one; None for a remote hub

    async def close(self) -> None:
        self.bridge.stop()
        await self.bridge.wait_stopped()
        await self.bridge.aclose()
        if self.host is not None:
            await self.host.stop()


async def _serve(settings: HostSettings, choice: HubChoice, quit_requested: _QuitRequest,
                 ui_settings: QSettings, local_studio: bool = False) -> int:
    """Attach, show the window until it closes; again for each hub the operator picks."""
    history = HubHistory(ui_settings)
    previous = history.last_url() if history.last_mode() == "remote" else None
    while True:
        try:
            attached = await _attach(choice, settings)
        except (OSError, AttachError) as exc:
            return await _failed(exc, choice, quit_requested)
        history.remember(attached.choice)
        note = None
        if choice.embedded and previous:
            note = (f"The last session was attached to the remote hub {previous}; "
                    "File ▸ Recent Hubs attaches to it again.")
        next_choice = await _show_window(attached, quit_requested, ui_settings, note,
                                         local_studio)
        if next_choice is None or quit_requested.signalled:
            return 0
        log.info("switching to %s", next_choice.url or "the embedded hub")
        choice, previous, local_studio = next_choice, None, False
        quit_requested.reset()


async def _attach(choice: HubChoice, settings: HostSettings) -> _Attached:
    """Start the embedded host, or check the remote hub and build a bridge to it."""
    if choice.url is None:
        host = Host(settings)
        await host.start()
        try:
            bridge = await embedded_bridge(host)
        except BaseException:
            await host.stop()
            raise
        return _Attached(choice, bridge, settings.data_dir / "agents", host)
    token = choice.resolve_token()
    log.info("attaching to the hub at %s", choice.url)
    bridge = await HubBridge.attach(choice.url, token, pin=choice.pin)
    attached = HubChoice(bridge.base_url, token=token, token_file=choice.token_file,
                         pin=choice.pin)
    # Agents spawned here keep credentials per hub: one hub's secret means nothing to another.
    root = settings.data_dir / "remote" / hub_slug(bridge.base_url) / "agents"
    return _Attached(attached, bridge, root)


async def _show_window(attached: _Attached, quit_requested: _QuitRequest,
                       ui_settings: QSettings, note: str | None,
                       local_studio: bool = False) -> HubChoice | None:
    """The window over one hub until it closes; the hub to switch to, if one was picked."""
    bridge = attached.bridge
    supervisor = Supervisor(bridge.base_url, attached.agents_root, bridge.create_enrollment,
                            registered=lambda: [str(c["id"]) for c in bridge.snapshot()],
                            pin=bridge.info.pin)
    window = MainWindow(bridge, ui_settings, supervisor=supervisor)
    window.closed.connect(quit_requested.set)
    quit_requested.closes(window)
    try:
        if not quit_requested.is_set():  # a signal may have come during start-up
            bridge.start()
            window.show()
            if note:
                window.event_log.append_note(note)
            if local_studio:
                window.start_local_studio()
            log.info("console window open on %s%s", bridge.base_url,
                     " (remote hub)" if bridge.is_remote else "")
            await quit_requested.wait()
    finally:
        log.info("shutting down" if window.switch_to is None else "closing the window")
        await window.shutdown()
        await supervisor.close(keep=window.keep_agents)
        await attached.close()
        window.deleteLater()
    return window.switch_to


async def _failed(exc: Exception, choice: HubChoice, quit_requested: _QuitRequest) -> int:
    """Say why the console cannot open, in a box (a windowed build has no stderr)."""
    if isinstance(exc, AttachError):
        log.error("cannot attach to the hub: %s", exc.message)
        title, text = "Cannot attach to the hub", exc.message
    else:
        log.error("the hub could not start: %s", exc)
        title = "The hub could not start"
        text = (f"{exc}\n\nIs another Control Room already running? Choose another port "
                "with --port (0 picks a free one), or another --data-dir.")
    box = _error_box(title, text)
    box.finished.connect(quit_requested.set)
    quit_requested.closes(box)
    box.open()  # not exec(): a modal loop would nest inside the asyncio loop
    await quit_requested.wait()
    box.deleteLater()
    return 1


class _QuitRequest:
    """One way out for the window, Ctrl+Q, the error box, SIGINT and SIGTERM alike.

    A signal closes whatever window is open, so it shuts down exactly as closing by hand
    does; one that arrives before the window exists is remembered. After a switch to
    another hub, :meth:`reset` arms it again for the next window.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[None] = loop.create_future()
        self._widget: QWidget | None = None
        #: A signal asked to quit: no switch to another hub then.
        self.signalled = False

    def closes(self, widget: QWidget) -> None:
        self._widget = widget

    def on_signal(self, sig: signal.Signals) -> None:
        log.info("%s received; closing", sig.name)
        self.signalled = True
        if self._widget is not None and self._widget.isVisible():
            self._widget.close()  # emits closed/finished, which calls set()
        self.set()

    def set(self, *_args: object) -> None:
        if not self._future.done():
            self._future.set_result(None)

    def is_set(self) -> bool:
        return self._future.done()

    def reset(self) -> None:
        self._future = self._loop.create_future()
        self._widget = None

    async def wait(self) -> None:
        await asyncio.shield(self._future)


def _error_box(title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, title, QMessageBox.StandardButton.Ok)
    box.setInformativeText(text)
    return box
