"""Run-time hook: where the bundle's Qt plugins are, without importing Qt.

It replaces PyInstaller's own PySide6 hook, which imports ``PySide6.QtCore`` at the start
of every process to write a ``qt.conf`` for Qt builds that lack one. The PyPI wheels this
bundle is built from need none, and that import loaded Qt and ICU into every headless
hub, agent, flow worker and job shim (13 MiB each, for nothing). Headless modes never
import Qt; the frozen ones must not either.
"""

import os
import sys

_base = os.path.join(sys._MEIPASS, "PySide6")  # type: ignore[attr-defined]
if not sys.platform.startswith("win"):
    _base = os.path.join(_base, "Qt")
os.environ["QT_PLUGIN_PATH"] = os.path.join(_base, "plugins")
del _base
