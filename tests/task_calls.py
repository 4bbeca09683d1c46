"""The audio task routes as a test calls them: reserve, wait, render and download."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from processes import HubProcess, wait_until


def two_driver_spec(duration_s: float) -> dict[str, Any]:
    """Two tracks through three instances: a compressor on ``driver-1``, an EQ in the
    engine and a saturator on ``driver-2`` (the task the integration and chaos tests
    reserve; a render of it crosses both insert links)."""
    return {
        "sample_rate": 48000, "block_size": 1024,
        "tracks": [
            {"id": "bass", "source": {"type": "tone", "freq_hz": 110, "level_dbfs": -9,
                                      "duration_s": duration_s}, "gain_db": -3,
             "chain": ["driver-1.comp"]},
            {"id": "air", "source": {"type": "noise", "level_dbfs": -24, "seed": 7,
                                     "duration_s": duration_s}, "pan": 0.5,
             "chain": ["eq1", "driver-2.tape"]},
        ],
        "instances": {
            "driver-1.comp": {"model": "compressor", "params": {"threshold_db": -20,
                                                                "ratio": 4},
                              "location": {"driver": "driver-1"}},
            "driver-2.tape": {"model": "saturator", "location": {"driver": "driver-2"}},
            "eq1": {"model": "eq"},
        },
        "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"},
    }


class TaskCalls:
    """``/api/v1`` task calls on a hub, with its operator token."""

    def __init__(self, hub: HubProcess) -> None:
        self.hub = hub

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.hub.client.request(method, f"{self.hub.url}/api/v1{path}",
                                       headers=self.hub.auth, **kw)

    def task(self, task_id: str) -> dict[str, Any]:
        r = self.call("GET", f"/tasks/{task_id}")
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    def reserve(self, spec: dict[str, Any], state: str = "ready") -> dict[str, Any]:
        r = self.call("POST", "/tasks", json=spec)
        assert r.status_code == 201, r.text
        task_id = r.json()["id"]
        return self.wait(task_id, state)

    def wait(self, task_id: str, state: str, timeout: float = 15) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            task = self.task(task_id)
            return task if task["state"] == state else None

        return wait_until(reached, timeout, f"task {task_id} to be {state}")  # type: ignore

    def start_render(self, task_id: str, fmt: str = "wav24",
                     farm: dict[str, Any] | None = None) -> str:
        """POST the render; its id."""
        body: dict[str, Any] = {"format": fmt, **({"farm": farm} if farm else {})}
        r = self.call("POST", f"/tasks/{task_id}/render", json=body)
        assert r.status_code == 202, r.text
        return str(r.json()["render_id"])

    def finished(self, task_id: str, rid: str, timeout: float = 30) -> dict[str, Any]:
        """The render's view once it is no longer running."""
        def ended() -> dict[str, Any] | None:
            render = self.call("GET", f"/tasks/{task_id}/renders/{rid}").json()
            return render if render["state"] != "running" else None

        return wait_until(ended, timeout, "the render to finish", step=0.05)  # type: ignore

    def render(self, task_id: str, fmt: str = "wav24", timeout: float = 30,
               farm: dict[str, Any] | None = None) -> bytes:
        rid = self.start_render(task_id, fmt, farm)
        render = self.finished(task_id, rid, timeout)
        assert render["state"] == "done", render
        file = self.call("GET", f"/tasks/{task_id}/renders/{rid}/file")
        assert file.status_code == 200 and file.headers["content-type"] == "audio/wav"
        assert len(file.content) == render["bytes"]
        return file.content

    def configure(self, component: str, output: Callable[[], str], **config: Any) -> None:
        """Push stored config to ``component`` and wait until its output says it applied."""
        r = self.call("PUT", f"/configs/{component}", json=config)
        assert r.status_code == 200 and r.json()["pushed"], r.text
        for key, value in config.items():
            wait_until(lambda k=key, v=value: f"'{k}': {v}" in output(), 15,
                       f"{component} to apply {key}")
