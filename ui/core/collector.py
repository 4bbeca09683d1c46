"""Python's cyclic garbage collector, run only on the GUI thread.

CPython collects whenever allocations pass a threshold, on whichever thread happens to be
allocating. In this program that is often a worker (the hub's SQLite executor, a file copy,
a sounddevice query). A cycle that holds a Qt wrapper (a closed window and the lambdas
connected to it, a finished dialog) is then freed there, and its C++ destructor runs off
the GUI thread while the GUI thread may be using it: a segmentation fault some time later,
in code that did nothing wrong. pyqtgraph's ``GarbageCollector`` answers the same problem
the same way: switch the automatic collector off and collect from a timer on the GUI
thread, generation by generation, with the thresholds CPython would have used.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500  # a cycle lives at most this long past its threshold


class GuiThreadCollector(QObject):
    """Owns the collector while installed; :meth:`uninstall` hands it back to CPython."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self._was_enabled = False
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)

    def install(self) -> GuiThreadCollector:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()
        return self

    def uninstall(self) -> None:
        """Collect what is left here, on the GUI thread, then restore the automatic collector."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def check(self) -> None:
        """Collect the oldest generation whose count passed its threshold, as CPython would."""
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        for generation in (2, 1, 0):
            if thresholds[generation] and counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return
