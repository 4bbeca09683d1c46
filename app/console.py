"""A console window over an embedded hub or a remote one, for scripts that drive the real UI.

The screenshot script (``app.screenshot``), the GUI benchmark and the UI tests all need the
same thing the desktop app builds: a ``Host`` (hub and node on a free port) or a remote
hub's bridge, the supervisor for spawned agents and the main window, started in that order
and stopped in reverse, with nothing left running. ``app.desktop`` builds its own because
it also owns signals, quitting and switching hubs; everything else opens one with
:func:`open_console` or :func:`open_remote_console`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from backend.host import Host, HostSettings
from backend.supervisor import Supervisor
from ui.core.bridge import HubBridge
from ui.shell.main_window import MainWindow


async def wait_for(predicate: Callable[[], bool], what: str, within: float = 60.0,
                   poll_s: float = 0.1) -> None:
    """Poll while the loop (hub, agents, Qt) keeps running; fail loudly if it never holds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {what} after {within:g} s")
        await asyncio.sleep(poll_s)


@dataclass
class RemoteConsole:
    """A running console window with its parts in reach (over a remote hub)."""

    bridge: HubBridge
    window: MainWindow
    closed: asyncio.Future[None]
    supervisor: Supervisor

    def state_of(self, component_id: str) -> str | None:
        """The health state the window's model shows for a component."""
        for component in self.window.model.components():
            if component["id"] == component_id:
                return str(component["state"])
        return None


@dataclass
class Console(RemoteConsole):
    """A running desktop console as ``app.desktop`` builds it, over its embedded hub."""

    host: Host

    @property
    def base_url(self) -> str:
        return self.host.base_url


async def embedded_bridge(host: Host, **kwargs: Any) -> HubBridge:
    """A bridge to the hub ``host`` runs in this process, over its own HTTP API: the same
    client and the same checks as for a hub on another machine."""
    return await HubBridge.attach(host.base_url, host.hub.operator_token, is_remote=False,
                                  trust=host.trust, **kwargs)


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
    try:
        bridge = await embedded_bridge(host, cache_dir=data_dir / "cache")
        async with _window(bridge, data_dir / "agents", settings, log_level) as console:
            yield Console(console.bridge, console.window, console.closed, console.supervisor,
                          host)
    finally:
        await host.stop()


@contextlib.asynccontextmanager
async def open_remote_console(url: str, token: str, root: Path, settings: QSettings, *,
                              log_level: str = "warning", pin: str = ""
                              ) -> AsyncIterator[RemoteConsole]:
    """The console as ``controlroom --hub URL`` builds it (see ``app.desktop._attach``)."""
    bridge = await HubBridge.attach(url, token, pin=pin, cache_dir=root / "cache")
    async with _window(bridge, root / "agents", settings, log_level) as console:
        yield console


@contextlib.asynccontextmanager
async def _window(bridge: HubBridge, agents_root: Path, settings: QSettings,
                  log_level: str) -> AsyncIterator[RemoteConsole]:
    """The supervisor and the window over ``bridge``, started, then stopped in reverse."""
    supervisor = Supervisor(bridge.base_url, agents_root, bridge.create_enrollment,
                            log_level=log_level, pin=bridge.info.pin)
    window = MainWindow(bridge, settings, supervisor=supervisor)
    try:
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_closed() -> None:
            if not closed.done():
                closed.set_result(None)

        window.closed.connect(on_closed)
        bridge.start()
        window.show()
        try:
            yield RemoteConsole(bridge, window, closed, supervisor)
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
        window.deleteLater()
