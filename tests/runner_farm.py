"""Helpers for runner and job tests: real runner processes with short timings."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from processes import QTBLOCK, ROOT, AgentProcess, HubProcess, child_env, wait_until

#: Fast timings so the tests take seconds: heartbeat, reports, retries, SIGKILL grace.
FAST = {"heartbeat_s": 0.5, "report_interval_s": 0.1, "retry_s": 0.5, "grace_s": 1.0}


def controlroom(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, QTBLOCK, "-m", "app.main", *args],
                          capture_output=True, text=True, cwd=ROOT, env=child_env(),
                          timeout=timeout)


def script(*lines: str) -> list[str]:
    """argv for a small Python job."""
    return [sys.executable, "-c", "\n".join(lines)]


class Farm:
    def __init__(self, hub: HubProcess, spawn: Callable[..., AgentProcess],
                 tmp_path: Path) -> None:
        self.hub = hub
        self.spawn = spawn
        self.tmp_path = tmp_path

    def runner(self, name: str, labels: str = "", token: str | None = "",
               **config: Any) -> AgentProcess:
        path = self.tmp_path / f"{name}.config.json"
        path.write_text(json.dumps({**FAST, **config}))
        extra = ["--config", str(path)]
        if labels:
            extra += ["--labels", labels]
        return self.spawn(self.hub, name, "runner", token, *extra)

    def ready(self, name: str, timeout: float = 20) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            r = self.hub.client.get(f"{self.hub.url}/api/v1/runners/{name}")
            if r.status_code != 200:
                return None
            view: dict[str, Any] = r.json()
            return view if view["phase"] == "ready" and view["state"] == "up" else None

        return wait_until(check, timeout, f"runner {name} to be ready")  # type: ignore

    def call(self, method: str, path: str, **kw: Any) -> Any:
        return self.hub.client.request(method, f"{self.hub.url}/api/v1{path}",
                                       headers=self.hub.auth, **kw)

    def submit(self, argv: list[str] | None = None, *, kind: str = "command",
               needs: dict[str, Any] | None = None, payload: Any = None,
               timeout_s: float | None = None) -> str:
        body: dict[str, Any] = {"kind": kind, "needs": needs or {"cpus": 0},
                                "payload": payload or {"argv": argv}}
        if timeout_s is not None:
            body["timeout_s"] = timeout_s
        r = self.call("POST", "/jobs", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.call("GET", f"/jobs/{job_id}")
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    def wait(self, job_id: str, states: str | Iterable[str], timeout: float = 20,
             check: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        wanted = {states} if isinstance(states, str) else set(states)

        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            ok = job["state"] in wanted and (check is None or check(job))
            return job if ok else None

        return wait_until(reached, timeout, f"job {job_id} to be {wanted}",  # type: ignore
                          step=0.05)

    def logs(self, job_id: str) -> str:
        r = self.call("GET", f"/jobs/{job_id}/logs")
        r.raise_for_status()
        return str(r.text)

    def job_events(self, job_id: str) -> list[dict[str, Any]]:
        return [e for e in self.hub.events(idle=0.4) if e["data"]["subject"] == job_id]
