"""The cyclic collector runs on the GUI thread only, while the app's collector is installed."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

from pytestqt.qtbot import QtBot

from ui.core.collector import GuiThreadCollector


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_worker_thread_allocating_never_collects_and_the_gui_timer_does(qtbot: QtBot) -> None:
    threads: list[int] = []

    def record(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            threads.append(threading.get_ident())

    gc.collect()
    outer_enabled = gc.isenabled()
    collector = GuiThreadCollector(interval_ms=20)
    gc.callbacks.append(record)
    try:
        collector.install()
        assert not gc.isenabled()
        cycle = _Cycle()
        alive = weakref.ref(cycle)
        del cycle
        kept: list[list[int]] = []
        worker = threading.Thread(target=lambda: kept.extend([i] for i in range(50_000)))
        worker.start()
        worker.join()
        assert alive() is not None, "the worker's allocations collected the cycle"
        assert threads == []
        qtbot.waitUntil(lambda: alive() is None, timeout=5000)
        assert threads and set(threads) == {threading.get_ident()}
    finally:
        gc.callbacks.remove(record)
        collector.uninstall()
    assert gc.isenabled() == outer_enabled  # handed back as it was found
