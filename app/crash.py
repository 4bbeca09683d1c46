"""An exception nobody caught, shown to the person at the window instead of lost.

A windowed build has no terminal (``sys.stderr`` is ``None``): an exception raised in a Qt
slot is passed to ``sys.excepthook`` and, by default, printed to nowhere; one that escapes
``main`` ends the process silently. Both land here: the traceback goes to the log file, and
a dialog says what happened and where that file is, so a bug report can carry it.

Qt is imported only when a dialog is really shown, so headless modes stay free of it.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from types import TracebackType
from typing import Any

from app import logs
from app.display import has_display

log = logging.getLogger(__name__)
#: The dialog on screen now, if any.
_box: Any = None
#: A QApplication made here for a last box, kept alive while it shows.
_keep: list[Any] = []


def report(exc: BaseException) -> None:
    """An exception escaped ``main``: log it, print it if there is a terminal, show it."""
    log.critical("Control Room stopped on an error it did not expect", exc_info=exc)
    if sys.stderr is not None:
        traceback.print_exception(exc)
    _show(exc, ended=True)


def excepthook(kind: type[BaseException], exc: BaseException,
               tb: TracebackType | None) -> None:
    """``sys.excepthook`` while the window runs: the app goes on, the operator is told."""
    log.error("an error escaped a window action", exc_info=(kind, exc, tb))
    if sys.stderr is not None:
        traceback.print_exception(kind, exc, tb)
    _show(exc, ended=False)


def message(exc: BaseException, ended: bool) -> tuple[str, str]:
    """The dialog's title and text: what happened, and where the details are."""
    title = ("Control Room stopped because of an error" if ended
             else "Control Room hit an error it did not expect")
    where = logs.current_file()
    text = f"{type(exc).__name__}: {exc}\n\n"
    text += (f"The details are in the log file (attach it to a report):\n{where}"
             if where is not None
             else "No log file was open yet; run controlroom from a terminal to see more.")
    if not ended:
        text += "\n\nThe console keeps running, but the action that failed did not finish."
    return title, text


def _show(exc: BaseException, ended: bool) -> None:
    """A dialog, when someone could see it; a second error while one is shown only logs."""
    global _box
    if _box is not None or not has_display() or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return  # offscreen nobody would see it, and a modal box would wait forever
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        if not ended:
            return  # no window yet: the log has it
        _keep.append(QApplication(sys.argv[:1]))  # main has ended: a box needs an app
    box = dialog(exc, ended)
    if ended:
        box.exec()  # the event loop is gone: a modal box is all there is
        return
    _box = box  # held until closed, and it stops a storm of boxes
    box.finished.connect(_closed)
    box.open()  # not exec(): a modal loop would nest inside the asyncio loop


def dialog(exc: BaseException, ended: bool) -> Any:
    """The box: what happened and where the log is; the traceback under Show Details."""
    from PySide6.QtWidgets import QMessageBox

    title, text = message(exc, ended)
    box = QMessageBox(QMessageBox.Icon.Critical, "Control Room", title,
                      QMessageBox.StandardButton.Ok)
    box.setInformativeText(text)
    box.setDetailedText("".join(traceback.format_exception(exc)))
    return box


def _closed(*_args: object) -> None:
    global _box
    _box = None
