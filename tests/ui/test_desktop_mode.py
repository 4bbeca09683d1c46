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

from tests.processes import HubProcess

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
    assert health["status"] == "ok"

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


def test_attached_to_a_remote_hub_it_serves_nothing_and_closing_leaves_the_hub_running(
    desktop: Callable[..., Desktop], tmp_path: Path,
) -> None:
    hub = HubProcess(tmp_path / "remote-hub").start()
    try:
        token_file = tmp_path / "copy-of-admin.token"
        token_file.write_text(hub.token)
        app = desktop("--hub", hub.url, "--token-file", str(token_file))
        app.wait_for(lambda: "console window open" in app.stderr(), "opening the window")
        assert f"console window open on {hub.url} (remote hub)" in app.stderr()
        assert not (app.data_dir / "hub.url").exists()  # no hub of its own
        assert app.stop(signal.SIGTERM) == 0, app.stderr()
        assert "Traceback" not in app.stderr()
        assert "hub stopped" not in app.stderr()
        assert hub.token not in app.stderr()
        assert hub.token not in (app.data_dir / "logs" / "controlroom.log").read_text()
        assert hub.proc is not None and hub.proc.poll() is None
        assert httpx.get(f"{hub.url}/api/v1/health", timeout=10).json()["status"] == "ok"
        remembered = (tmp_path / "config" / "controlroom" / "Control Room.conf").read_text()
        assert hub.url in remembered and hub.token not in remembered
    finally:
        hub.close()


def test_a_wrong_operator_token_for_a_remote_hub_is_reported_and_exits_1(
    desktop: Callable[..., Desktop], tmp_path: Path,
) -> None:
    hub = HubProcess(tmp_path / "remote-hub").start()
    try:
        app = desktop("--hub", hub.url, "--token", "not-the-token")
        app.wait_for(lambda: "cannot attach" in app.stderr(), "reporting the error")
        assert app.stop(signal.SIGTERM) == 1  # the box waits; a signal dismisses it
        assert "refused the operator token" in app.stderr()
        assert "DATA/admin.token on the hub's machine" in app.stderr()
        assert "Traceback" not in app.stderr()
    finally:
        hub.close()


@pytest.mark.parametrize(("args", "said"), [
    (["--hub", "http://127.0.0.1:8750", "--headless"], "use one or the other"),
    (["--token-file", "admin.token"], "give the hub too"),
    (["--hub", "http://127.0.0.1:8750", "--upstream", "http://127.0.0.1:8760"],
     "start the remote hub with --upstream instead"),
], ids=["with-headless", "token-file-alone", "with-upstream"])
def test_remote_options_that_do_not_go_together_are_refused(
    desktop: Callable[..., Desktop], args: list[str], said: str,
) -> None:
    app = desktop(*args)
    assert app.process.wait(timeout=30) == 2
    assert said in app.stderr()
