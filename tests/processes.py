"""Real processes for integration tests: a headless hub and agents, started as the user would.

Every hub and agent here runs under ``tests/qtblock.py``, so each integration test also
proves that the headless and agent modes work with Qt unimportable.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from backend.tls import Trust, fingerprint, made_by_hub

ROOT = Path(__file__).resolve().parent.parent
QTBLOCK = str(ROOT / "tests" / "qtblock.py")
#: How a test starts the program: from the sources, under the Qt blocker. The packaging
#: tests pass the frozen console executable instead.
SOURCE = (sys.executable, QTBLOCK, "-m", "app.main")


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class HubProcess:
    """``controlroom --headless`` in its own process, with an HTTP client for it."""

    def __init__(self, data_dir: Path, *extra: str, port: int = 0,
                 program: tuple[str, ...] = SOURCE) -> None:
        self.data_dir = data_dir
        self.program = program
        self.extra = list(extra)
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.client = httpx.Client(timeout=10)
        self.starts = 0

    def start(self) -> HubProcess:
        url_file = self.data_dir / "hub.url"
        url_file.unlink(missing_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(self.data_dir / f"stderr-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [*self.program, "--headless",
             "--data-dir", str(self.data_dir), "--port", str(self.port), *self.extra],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=child_env(),
        )
        log.close()
        wait_until(lambda: url_file.exists() or self.proc.poll() is not None, 60, "hub.url")
        assert self.proc.poll() is None, self.stderr()
        self.url = url_file.read_text().strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        if self.url.startswith("https:"):  # trust exactly the certificate it made, or
            self.client.close()            # the CAs a --tls-cert's test names (SSL_CERT_FILE)
            made = made_by_hub(self.data_dir)
            self.client = httpx.Client(timeout=10, verify=Trust((made,)).context()
                                       if made else ssl.create_default_context())
        # Every route but health needs a token: the helpers send the operator's. A test
        # that means to call without one passes headers={"Authorization": ""}.
        self.client.headers["Authorization"] = f"Bearer {self.token}"
        return self

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    @property
    def certificate(self) -> str:
        """The certificate (PEM) the hub made and serves, from its data dir."""
        made = made_by_hub(self.data_dir)
        assert made is not None, "this hub made no certificate (plain HTTP, or --tls-cert)"
        return made

    @property
    def pin(self) -> str:
        return fingerprint(self.certificate)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stderr(self) -> str:
        return (self.data_dir / f"stderr-{self.starts}.log").read_text(errors="replace")

    def enroll(self, kind: str = "engine", **body: Any) -> str:
        r = self.client.post(f"{self.url}/api/v1/enrollments", json={"kind": kind, **body},
                             headers=self.auth)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def events(self, after: int | None = None, idle: float = 0.6,
               headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Read the SSE stream until it has been quiet for ``idle`` seconds."""
        params = {} if after is None else {"after": after}
        found: list[dict[str, Any]] = []
        current: dict[str, Any] = {}
        timeout = httpx.Timeout(10, read=idle)
        try:
            with self.client.stream("GET", f"{self.url}/api/v1/events", params=params,
                                    headers=headers or {}, timeout=timeout) as response:
                assert response.status_code == 200, response.read()
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        current["id"] = int(line[4:])
                    elif line.startswith("event: "):
                        current["event"] = line[7:]
                    elif line.startswith("data: "):
                        current["data"] = json.loads(line[6:])
                    elif line == "" and current:
                        found.append(current)
                        current = {}
        except httpx.ReadTimeout:
            pass
        return found

    def components(self) -> dict[str, dict[str, Any]]:
        r = self.client.get(f"{self.url}/api/v1/components")
        r.raise_for_status()
        return {c["id"]: c for c in r.json()}

    def wait_state(self, name: str, state: str, timeout: float = 15) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            c = self.components().get(name)
            return c if c and c["state"] == state else None

        return wait_until(reached, timeout, f"{name} to be {state}")  # type: ignore[no-any-return]

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def close(self) -> None:
        self.stop()
        self.client.close()


class AgentProcess:
    """``controlroom agent KIND`` in its own process."""

    def __init__(self, hub_url: str, kind: str, name: str, data_dir: Path,
                 token: str | None, *extra: str, program: tuple[str, ...] = SOURCE) -> None:
        self.name = name
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "stderr.log"
        args = [*program, "agent", kind, "--hub", hub_url,
                "--name", name, "--data-dir", str(data_dir), *extra]
        env = child_env()
        if token:  # as a user should: in the environment, off the command line
            env["CONTROLROOM_TOKEN"] = token
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                         env=env)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def close(self) -> None:
        """Stop the agent and, for a runner, the jobs it left running (see kill_jobs)."""
        self.stop()
        kill_jobs(self.data_dir)


def kill_jobs(agent_dir: Path) -> None:
    """SIGKILL the process groups of every job a runner started under ``agent_dir``.

    A job outlives its runner by design (its shim runs in its own session, so a restarted
    runner finds it again); a test's job must not outlive the test. The contract fuzzer
    submits render jobs of up to a day, which kept both cores busy for the rest of a run.
    """
    import psutil

    for record in (*agent_dir.glob("jobs/*/shim.json"), *agent_dir.glob("jobs/*/child.json")):
        try:
            data = json.loads(record.read_text())
            pid = int(data["pid"])
            born = float(data.get("create_time") or data["started"])
            if abs(psutil.Process(pid).create_time() - born) > 2.0:
                continue  # the job ended and its pid went to another process
            os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError, KeyError, TypeError, psutil.Error):
            pass


def running_hub(data_dir: Path, *extra: str) -> Iterator[HubProcess]:
    """A started hub for a fixture to yield; stopped afterwards, even a SIGSTOPped one."""
    hub = HubProcess(data_dir, *extra).start()
    try:
        yield hub
    finally:
        if hub.proc is not None and hub.proc.poll() is None:
            hub.send(signal.SIGCONT)
        hub.close()
