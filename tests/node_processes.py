"""Real node processes for the node's integration tests (``controlroom agent node``).

A node leaves its workers running when it stops (that is how runs survive a restart), so
:func:`kill_workers` ends the workers a test's nodes started, by the process ids the nodes
recorded in their own stores, and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from processes import QTBLOCK, ROOT, HubProcess, child_env, wait_until

from backend.tls import Trust

FLOWS = ROOT / "tests" / "integration" / "node_flows.py"


class NodeProcess:
    """``controlroom agent node`` on a free port, with an HTTP client for its /node/v1."""

    def __init__(self, hub: HubProcess, name: str, data_dir: Path, *extra: str,
                 env: dict[str, str] | None = None, enroll: bool = True) -> None:
        self.hub = hub
        self.name = name
        self.data_dir = data_dir
        self.extra = list(extra)
        self.env = env
        self.token_for_hub = hub.enroll("node") if enroll else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(timeout=15)
        #: What to verify the node's TLS with (its own certificate), once it serves TLS.
        self.client_tls: ssl.SSLContext | None = None
        self.starts = 0
        self.url = ""

    def start(self, wait_linked: bool = True) -> NodeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "node.url").unlink(missing_ok=True)
        self.starts += 1
        args = [sys.executable, QTBLOCK, "-m", "app.main", "agent", "node", "--hub",
                self.hub.url, "--name", self.name, "--data-dir", str(self.data_dir),
                "--port", "0", "--flows", str(FLOWS), *self.extra]
        env = dict(self.env or child_env())
        if self.token_for_hub and self.starts == 1:
            env["CONTROLROOM_TOKEN"] = self.token_for_hub  # off the command line
            if self.hub.url.startswith("https:"):
                args += ["--pin", self.hub.pin]
        with open(self.data_dir / f"stderr-{self.starts}.log", "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                         env=env)
        wait_until(lambda: (self.data_dir / "node.url").exists() or self.proc.poll() is not None,
                   20, f"{self.name}'s node.url")
        assert self.proc.poll() is None, self.output()
        self.url = (self.data_dir / "node.url").read_text().strip()
        if self.url.startswith("https:"):  # trust exactly the certificate it serves
            self.client.close()
            self.client_tls = Trust(((self.data_dir / "node.crt").read_text(),)).context()
            self.client = httpx.Client(timeout=15, verify=self.client_tls)
        self.client.headers["Authorization"] = f"Bearer {self.token}"  # reads need it too
        if wait_linked:
            wait_until(lambda: self.listed().get("linked"), 20, f"{self.name} linked")
        return self

    def listed(self) -> dict[str, Any]:
        nodes = self.hub.client.get(f"{self.hub.url}/api/v1/nodes").json()
        return next((n for n in nodes if n["name"] == self.name), {})

    @property
    def token(self) -> str:
        return (self.data_dir / "node.token").read_text().strip()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def output(self) -> str:
        return (self.data_dir / f"stderr-{self.starts}.log").read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(15)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.client.close()
        kill_workers(self.data_dir)


class Runs:
    """The /node/v1 run routes at a base URL (a node directly, or the hub's proxy)."""

    def __init__(self, client: httpx.Client, base: str, auth: dict[str, str]) -> None:
        self.client = client
        self.base = base.rstrip("/")
        self.auth = auth

    def start(self, flow: str, inputs: dict[str, Any] | None = None, **body: Any) -> str:
        payload: dict[str, Any] = {"flow": flow, **body}
        if inputs is not None:
            payload["inputs"] = inputs
        r = self.client.post(f"{self.base}/runs", json=payload, headers=self.auth)
        assert r.status_code == 201, r.text
        return str(r.json()["fid"])

    def state(self, fid: str) -> dict[str, Any]:
        r = self.client.get(f"{self.base}/runs/{fid}", headers=self.auth)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait(self, fid: str, *states: str, timeout: float = 20) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            s = self.state(fid)
            return s if s["state"] in states else None

        return wait_until(reached, timeout, f"run {fid} to be {states}", step=0.05)  # type: ignore[no-any-return]

    def lock(self, fid: str, timeout: float = 20) -> dict[str, Any]:
        s = self.wait(fid, "locked", timeout=timeout)
        return dict(s["locks"][0])

    def submit(self, fid: str, lid: str, candidate: Any) -> httpx.Response:
        return self.client.post(f"{self.base}/runs/{fid}/lock/{lid}/candidate",
                                json=candidate, headers=self.auth, timeout=30)

    def events(self, fid: str, after: int = 0) -> list[dict[str, Any]]:
        """The whole stream after ``after`` (it ends after ``final``)."""
        found: list[dict[str, Any]] = []
        with self.client.stream("GET", f"{self.base}/runs/{fid}/events",
                                headers={**self.auth, "Last-Event-ID": str(after)}
                                ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: "):
                    found.append(json.loads(line[6:]))
        return found


def kill_workers(node_dir: Path) -> None:
    """SIGKILL the process group of every worker this node's store recorded."""
    db = node_dir / "node.sqlite3"
    if not db.exists():
        return
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            pids = [row[0] for row in conn.execute("SELECT pid FROM runs WHERE pid IS NOT NULL")]
    except sqlite3.Error:
        return
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still alive")
        time.sleep(0.05)
