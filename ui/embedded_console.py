"""A console window over a freshly started embedded hub, for scripts that drive the real UI.

The screenshot script (``ui.screenshot``), the GUI benchmark and the UI tests all need the
same thing the desktop app builds: a ``Host`` (hub and node on a free port), the bridge,
the supervisor for spawned agents and the main window, started in that order and stopped
in reverse, with nothing left running. ``app.desktop`` builds its own because it also owns
signals, quitting and switching hubs; everything else opens one with :func:`open_console`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings

from app.supervisor import Supervisor
from backend.host import Host, HostSettings
from ui.bridge import HubBridge
from ui.main_window import MainWindow


@dataclass
class Console:
    """A running desktop console as ``app.desktop`` builds it, with its parts in reach."""

    host: Host
    bridge: HubBridge
    window: MainWindow
    closed: asyncio.Future[None]
    supervisor: Supervisor

    @property
    def base_url(self) -> str:
        return self.host.base_url

    def state_of(self, component_id: str) -> str | None:
        """The health state the window's model shows for a component."""
        for component in self.window.model.components():
            if component["id"] == component_id:
                return str(component["state"])
        return None


@contextlib.asynccontextmanager
async def open_console(data_dir: Path, settings: QSettings | None = None, *,
                       log_level: str = "warning") -> AsyncIterator[Console]:
    """Start host, bridge and window; on exit close the window and stop them all.

    The hub keeps its store in ``data_dir`` and spawned agents theirs in
    ``data_dir/agents``; ``settings`` (window layout) default to an INI file there, never
    the user's. Agents spawned through the supervisor are stopped on exit.
    """
    if settings is None:
        settings = QSettings(str(data_dir / "ui.ini"), QSettings.Format.IniFormat)
    host = Host(HostSettings(data_dir=data_dir, port=0))
    await host.start()
    window: MainWindow | None = None
    try:
        bridge = HubBridge(host.hub, host.base_url)
        supervisor = Supervisor(host.base_url, data_dir / "agents", bridge.create_enrollment,
                                log_level=log_level)
        window = MainWindow(bridge, settings, supervisor=supervisor)
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        window.closed.connect(lambda: closed.done() or closed.set_result(None))
        bridge.start()
        window.show()
        try:
            yield Console(host, bridge, window, closed, supervisor)
        finally:
            await supervisor.close()  # nothing left running: closing asks no question
            window.close()
            async with asyncio.timeout(5):
                await closed
            await window.shutdown()
            bridge.stop()
            await bridge.wait_stopped()
            await bridge.aclose()
    finally:
        await host.stop()
        if window is not None:
            window.deleteLater()
