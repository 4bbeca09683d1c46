"""Desktop mode (the default): hub + node service in-process, on Qt's loop, with a window.

qasync makes the Qt event loop the asyncio loop, so the embedded servers and the widgets
share one thread and never need locks. The life of the process reads top to bottom in
:func:`main`: start the host, open the window, wait for it to close (the window, Ctrl+Q,
SIGINT or SIGTERM all go through closing it), stop live updates, stop the host, return.
Qt is never told to quit while ``main`` runs: quit-on-last-window-closed is off and the
app ends when ``main`` returns, which is what keeps shutdown free of tracebacks
(PITFALLS.md: "Event loop stopped before Future completed").
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
from pathlib import Path

import qasync
from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.supervisor import Supervisor
from backend import __version__
from backend.host import Host, HostSettings
from ui import HubBridge, MainWindow

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


def run(settings: HostSettings) -> int:
    """Build the QApplication, run :func:`main` on a qasync loop, return the exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    QCoreApplication.setApplicationName(APP_NAME)
    QCoreApplication.setOrganizationName(ORGANISATION)
    QCoreApplication.setApplicationVersion(__version__)
    QApplication.setApplicationDisplayName(APP_NAME)
    icon = _resource("icons/controlroom.svg")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    app.setQuitOnLastWindowClosed(False)
    with asyncio.Runner(loop_factory=lambda: QtEventLoop(app)) as runner:
        return runner.run(main(settings))


async def main(settings: HostSettings) -> int:
    """The whole life of the desktop app; signals are handled from the first moment."""
    loop = asyncio.get_running_loop()
    quit_requested = _QuitRequest(loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, quit_requested.on_signal, sig)
    try:
        return await _serve(settings, quit_requested)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _serve(settings: HostSettings, quit_requested: _QuitRequest) -> int:
    """Start the host, show the window until a quit is requested, then stop in reverse."""
    host = Host(settings)
    try:
        await host.start()
    except OSError as exc:
        log.error("the hub could not start: %s", exc)
        box = _error_box(
            "The hub could not start",
            f"{exc}\n\nIs another Control Room already running? Choose another port with "
            "--port (0 picks a free one), or another --data-dir.",
        )
        box.finished.connect(quit_requested.set)
        quit_requested.closes(box)
        box.open()  # not exec(): a modal loop would nest inside the asyncio loop
        await quit_requested.wait()
        box.deleteLater()
        return 1

    bridge = HubBridge(host.hub, host.base_url)
    supervisor = Supervisor(host.base_url, settings.data_dir / "agents", bridge.create_enrollment)
    window = MainWindow(bridge, supervisor=supervisor)
    window.closed.connect(quit_requested.set)
    quit_requested.closes(window)
    try:
        if not quit_requested.is_set():  # a signal may have come during start-up
            bridge.start()
            window.show()
            log.info("console window open on %s", host.base_url)
            await quit_requested.wait()
    finally:
        log.info("shutting down")
        await window.shutdown()
        await supervisor.close(keep=window.keep_agents)
        bridge.stop()
        await bridge.wait_stopped()
        await bridge.aclose()
        await host.stop()
        window.deleteLater()
    return 0


class _QuitRequest:
    """One way out for the window, Ctrl+Q, the error box, SIGINT and SIGTERM alike.

    A signal closes whatever window is open, so it shuts down exactly as closing by hand
    does; one that arrives before the window exists is remembered.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._future: asyncio.Future[None] = loop.create_future()
        self._widget: QWidget | None = None

    def closes(self, widget: QWidget) -> None:
        self._widget = widget

    def on_signal(self, sig: signal.Signals) -> None:
        log.info("%s received; closing", sig.name)
        if self._widget is not None and self._widget.isVisible():
            self._widget.close()  # emits closed/finished, which calls set()
        self.set()

    def set(self, *_args: object) -> None:
        if not self._future.done():
            self._future.set_result(None)

    def is_set(self) -> bool:
        return self._future.done()

    async def wait(self) -> None:
        await asyncio.shield(self._future)


def _resource(relative: str) -> Path:
    """A file under ``resources/``: beside the sources, or unpacked by PyInstaller."""
    base = getattr(sys, "_MEIPASS", None)
    root = Path(base) if base else Path(__file__).resolve().parent.parent
    return root / "resources" / relative


def _error_box(title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, title, QMessageBox.StandardButton.Ok)
    box.setInformativeText(text)
    return box
