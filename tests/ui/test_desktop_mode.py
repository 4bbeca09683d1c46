"""``controlroom`` (desktop mode) as a real process: it opens, serves, and stops cleanly.

Run offscreen, with ``XDG_CONFIG_HOME`` in the test's tmp dir so the remembered window
geometry never lands in the real home directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


class Desktop:
    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.data_dir = tmp_path / "hub"
        self.stderr_path = tmp_path / "desktop.stderr"
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
                   XDG_CONFIG_HOME=str(tmp_path / "config"))
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.main", "--data-dir", str(self.data_dir), *args],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"exited ({self.process.returncode}) before {what}:\n"
                                     + self.stderr())
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} after {within:g} s:\n" + self.stderr())
            time.sleep(0.05)

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._stderr.close()


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Callable[..., Desktop]]:
    started: list[Desktop] = []

    def start(*args: str) -> Desktop:
        started.append(Desktop(tmp_path, *args))
        return started[-1]

    yield start
    for app in started:
        app.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_desktop_mode_serves_while_open_and_a_signal_closes_it_cleanly(
    desktop: Callable[..., Desktop], sig: signal.Signals,
) -> None:
    app = desktop("--port", "0")
    app.wait_for(lambda: (app.data_dir / "hub.url").exists(), "writing hub.url")
    app.wait_for(lambda: "console window open" in app.stderr(), "opening the window")
    url = (app.data_dir / "hub.url").read_text().strip()
    health = httpx.get(f"{url}/api/v1/health", timeout=10).json()
    assert health["status"] == "ok" and health["role"] == "studio"

    assert app.stop(sig) == 0, app.stderr()
    assert "Traceback" not in app.stderr()
    assert "hub stopped" in app.stderr()
    assert (app.data_dir.parent / "config" / "controlroom").is_dir()  # geometry remembered


def test_a_port_in_use_is_reported_and_exits_1_without_a_traceback(
    desktop: Callable[..., Desktop],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app = desktop("--port", str(taken.getsockname()[1]))
        app.wait_for(lambda: "could not start" in app.stderr(), "reporting the error")
        # The message box waits for the operator; a signal dismisses it like OK does.
        assert app.stop(signal.SIGTERM) == 1
    assert "cannot listen on 127.0.0.1" in app.stderr()
    assert "Traceback" not in app.stderr()
