"""``python -m ui.screenshot OUTDIR``: a true picture of the main window, for the docs.

Nothing is staged: it starts a real hub on a free port in a temporary data dir, enrolls
and spawns two real agent processes (an engine and an instance driver) over HTTP as an
operator would, waits until the hub's health checks have both up, selects the engine,
and saves ``OUTDIR/main-window.png``. Run it under Xvfb for the platform's real look
(``xvfb-run -a -s "-screen 0 1400x900x24" python -m ui.screenshot docs/screenshots``) or
with ``QT_QPA_PLATFORM=offscreen``.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import httpx
import qasync
from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication

from backend.host import Host, HostSettings
from ui.bridge import HubBridge
from ui.main_window import MainWindow

AGENTS = (("engine", "engine-1"), ("driver", "driver-1"))
SIZE = (1200, 760)


async def enroll(client: httpx.AsyncClient, base_url: str, operator_token: str, kind: str) -> str:
    response = await client.post(
        f"{base_url}/api/v1/enrollments",
        json={"kind": kind},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    response.raise_for_status()
    return str(response.json()["token"])


async def wait_until_up(window: MainWindow, names: list[str]) -> None:
    """Poll the window's own model: the picture shows what the window shows."""
    while True:
        states = {c["id"]: c["state"] for c in window.model.components()}
        if all(states.get(n) == "up" for n in names):
            return
        await asyncio.sleep(0.1)


async def capture(out_dir: Path, settle_s: float) -> Path:
    with tempfile.TemporaryDirectory(prefix="controlroom-shot-") as tmp:
        root = Path(tmp)
        host = Host(HostSettings(data_dir=root / "hub", port=0))
        await host.start()
        bridge = HubBridge(host.hub, host.base_url)
        window = MainWindow(bridge, QSettings(str(root / "ui.ini"), QSettings.Format.IniFormat))
        window.resize(*SIZE)
        bridge.start()
        window.show()
        agents: list[asyncio.subprocess.Process] = []
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                for kind, name in AGENTS:
                    token = await enroll(client, host.base_url, host.hub.operator_token, kind)
                    agents.append(await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "app.main", "agent", kind, "--hub",
                        host.base_url, "--name", name, "--token", token,
                        "--data-dir", str(root / name), "--log-level", "warning",
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    ))
            async with asyncio.timeout(60):
                await wait_until_up(window, [name for _, name in AGENTS])
            window.select_component(AGENTS[0][1])
            await asyncio.sleep(settle_s)  # a few health checks: round trips and "n s ago"
            path = out_dir / "main-window.png"
            if not window.grab().save(str(path)):
                raise OSError(f"could not write {path}")
            return path
        finally:
            for agent in agents:
                if agent.returncode is None:
                    agent.terminate()
            for agent in agents:
                await agent.wait()
            window.close()
            bridge.stop()
            await bridge.wait_stopped()
            await host.stop()
            window.deleteLater()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.screenshot", description=__doc__)
    parser.add_argument("out_dir", type=Path, help="where main-window.png is written")
    parser.add_argument("--settle", type=float, default=2.5, metavar="S",
                        help="seconds to let health checks run before the capture")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    QCoreApplication.setApplicationName("Control Room")
    app.setQuitOnLastWindowClosed(False)
    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        path = runner.run(capture(args.out_dir, args.settle))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
