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

import qasync
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from backend import __version__
from backend.host import Host, HostSettings
from ui import HubBridge, MainWindow

log = logging.getLogger(__name__)

APP_NAME = "Control Room"
#: QSettings files live under this name (``~/.config/controlroom/`` on Linux).
ORGANISATION = "controlroom"


def run(settings: HostSettings) -> int:
    """Build the QApplication, run :func:`main` on a qasync loop, return the exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    QCoreApplication.setApplicationName(APP_NAME)
    QCoreApplication.setOrganizationName(ORGANISATION)
    QCoreApplication.setApplicationVersion(__version__)
    QApplication.setApplicationDisplayName(APP_NAME)
    app.setQuitOnLastWindowClosed(False)
    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        return runner.run(main(settings))


async def main(settings: HostSettings) -> int:
    loop = asyncio.get_running_loop()
    host = Host(settings)
    try:
        await host.start()
    except OSError as exc:
        log.error("the hub could not start: %s", exc)
        await _show_error(
            "The hub could not start",
            f"{exc}\n\nIs another Control Room already running? Choose another port with "
            "--port (0 picks a free one) or another --data-dir.",
        )
        return 1

    bridge = HubBridge(host.hub, host.base_url)
    window = MainWindow(bridge)
    closed: asyncio.Future[None] = loop.create_future()

    def on_closed() -> None:
        if not closed.done():
            closed.set_result(None)

    window.closed.connect(on_closed)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _close_on_signal, window, sig)
    try:
        bridge.start()
        window.show()
        await closed
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("window closed; shutting down")
        bridge.stop()
        await bridge.wait_stopped()
        await host.stop()
        window.deleteLater()
    return 0


def _close_on_signal(window: MainWindow, sig: signal.Signals) -> None:
    """SIGINT/SIGTERM close the window, so they shut down exactly as the window does."""
    log.info("%s received; closing the window", sig.name)
    window.close()


async def _show_error(title: str, text: str) -> None:
    """A critical message the loop keeps running under (a modal exec() would nest loops).

    SIGINT/SIGTERM dismiss it, so a supervisor can still stop a process stuck on it.
    """
    loop = asyncio.get_running_loop()
    box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, title, QMessageBox.StandardButton.Ok)
    box.setInformativeText(text)
    done: asyncio.Future[None] = loop.create_future()
    box.finished.connect(lambda _result: done.done() or done.set_result(None))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, box.reject)
    try:
        box.open()
        await done
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        box.deleteLater()
