"""The desktop console's widgets and view models (Qt); the backend reaches them via a bridge.

Nothing here talks to the hub except :class:`HubBridge`, which turns the hub's state and
events into Qt signals; the window and its models only react to those signals. The Qt
binding is pinned before anything Qt-side is imported, because qasync, pyqtgraph and
pytest-qt each pick a binding by their own order (PITFALLS.md).
"""

import os

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from ui.bridge import HubBridge
from ui.components_model import ComponentsModel
from ui.main_window import MainWindow

__all__ = ["ComponentsModel", "HubBridge", "MainWindow"]
