"""The desktop console's widgets and view models (Qt); they reach the hub through a bridge.

Nothing here talks to the hub except :class:`ui.core.bridge.HubBridge`, which turns the hub's
state and events into Qt signals; the window and its models only react to those signals.
The Qt binding is pinned before anything Qt-side is imported, because qasync, pyqtgraph
and pytest-qt each pick a binding by their own order. Importing this package imports
nothing else: each module is imported by name where it is used.
"""

import os

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
