"""GUI test fixtures; Qt runs offscreen, and one binding serves every Qt-side library.

The environment is set here, before anything imports Qt. The helpers themselves are in
``tests/ui/harness.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from collections.abc import Iterator
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from tests.ui.harness import Agents, QtLoop
from ui.core.collector import GuiThreadCollector


@pytest.fixture
def qt_loop(qapp: QApplication) -> Iterator[QtLoop]:
    # Closing the test window must not quit the app: qasync would stop the loop while a
    # test still awaits on it, and the test would fail with "Event loop stopped before
    # Future completed".
    qapp.setQuitOnLastWindowClosed(False)
    loop = QtLoop(qapp)
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread(qapp: QApplication) -> Iterator[None]:
    """As in the app: a window left over from a test, or a cycle holding one, is freed on
    this thread, never on the hub's SQLite worker, where it crashed a later test."""
    collector = GuiThreadCollector().install()
    try:
        yield
    finally:
        collector.uninstall()
        shiboken6.delete(collector)


@pytest.fixture
def ui_settings(tmp_path: Path) -> QSettings:
    """Window geometry goes to a file under the test's tmp dir, never ~/.config."""
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    running = Agents(tmp_path / "agents")
    running.root.mkdir()
    try:
        yield running
    finally:
        running.close()
