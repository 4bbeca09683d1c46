"""An HTTP client of the hub for flows, scripts and tests: audio tasks and nodes' runs.

Flows get one as ``ctx.hub``, authenticated for their node, so a flow can reserve and
render audio tasks (DESIGN.md's ``/api/v1/tasks`` routes) and run flows on other nodes
through the hub's proxy (``/api/v1/nodes/{name}/...``), needing nothing but the hub's
address and one token. :meth:`NodeClient.events` follows a run's event stream and resumes
with ``Last-Event-ID`` after any cut (a node restart included), so a follower sees every
event exactly once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from backend.node.fold import RunEvent

RENDER_FINAL = frozenset({"done", "failed", "cancelled"})


class HubError(Exception):
    """The hub or a node answered with an error status; ``detail`` is what it said."""

    def __init__(self, status_code: int, detail: Any, what: str = "") -> None:
        text = detail if isinstance(detail, str) else json.dumps(detail)
        super().__init__(f"{what}: {status_code} {text}" if what else f"{status_code} {text}")
        self.status_code = status_code
        self.detail = detail


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text
    return body.get("detail", body) if isinstance(body, dict) else body


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        raise HubError(response.status_code, _detail(response), what)
    if not response.content:
        return None
    return response.json()


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[int, str, Any]]:
    """``(id, event, data)`` for each server-sent record; comment lines are skipped."""
    fields: dict[str, str] = {}
    async for line in lines:
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if "data" in fields:
            yield int(fields.get("id", "0")), fields.get("event", "message"), \
                json.loads(fields["data"])
        fields = {}


class NodeClient:
    """The ``/node/v1`` routes of one node, directly or through the hub's proxy."""

    def __init__(self, http: httpx.AsyncClient, prefix: str, reconnect_for_s: float = 300.0):
        self._http = http
        self.prefix = prefix.rstrip("/")
        self.reconnect_for_s = reconnect_for_s

    async def flows(self) -> list[dict[str, Any]]:
        return list(_check(await self._http.get(f"{self.prefix}/flows"), "flows"))

    async def start(
        self, flow: str, inputs: dict[str, Any] | None = None,
        parent: dict[str, Any] | None = None,
    ) -> str:
        body: dict[str, Any] = {"flow": flow, "inputs": inputs}
        if parent is not None:
            body["parent"] = parent
        response = await self._http.post(f"{self.prefix}/runs", json=body)
        return str(_check(response, f"run {flow}")["fid"])

    async def state(self, fid: str) -> dict[str, Any]:
        return dict(_check(await self._http.get(f"{self.prefix}/runs/{fid}"), f"run {fid}"))

    async def cancel(self, fid: str) -> dict[str, Any]:
        response = await self._http.delete(f"{self.prefix}/runs/{fid}")
        return dict(_check(response, f"cancel {fid}"))

    async def demand(self, fid: str, lid: str) -> dict[str, Any]:
        response = await self._http.get(f"{self.prefix}/runs/{fid}/lock/{lid}/candidate")
        return dict(_check(response, f"lock {lid}"))

    async def submit(self, fid: str, lid: str, candidate: Any) -> httpx.Response:
        """POST a candidate; the response is returned as is (200, 422, 409, 504...)."""
        return await self._http.post(
            f"{self.prefix}/runs/{fid}/lock/{lid}/candidate", json=candidate,
            timeout=httpx.Timeout(10, read=None),
        )

    async def events(self, fid: str, after: int = 0) -> AsyncIterator[RunEvent]:
        """Every event after ``after`` until ``final``, resuming across disconnects."""
        last = after
        gave_up_at = time.monotonic() + self.reconnect_for_s
        delay = 0.05
        while True:
            try:
                async with self._http.stream(
                    "GET", f"{self.prefix}/runs/{fid}/events",
                    headers={"Last-Event-ID": str(last)},
                    timeout=httpx.Timeout(10, read=None),
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        if response.status_code < 500:
                            raise HubError(response.status_code, _detail(response),
                                           f"events of {fid}")
                    else:
                        async for offset, _, data in parse_sse(response.aiter_lines()):
                            event = RunEvent(offset, data["ts"], data["type"], data["data"])
                            last = offset
                            gave_up_at = time.monotonic() + self.reconnect_for_s
                            delay = 0.05
                            yield event
                            if event.type == "final":
                                return
            except httpx.TransportError:
                pass
            if time.monotonic() > gave_up_at:
                raise HubError(503, f"lost the event stream of {fid} after offset {last}",
                               "events")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


class HubClient:
    """The hub's ``/api/v1`` for flows and the console: audio tasks, the nodes' proxy,
    enrollment tokens, runners and jobs."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def node(self, name: str) -> NodeClient:
        return NodeClient(self._http, f"/api/v1/nodes/{name}")

    async def nodes(self) -> list[dict[str, Any]]:
        return list(_check(await self._http.get("/api/v1/nodes"), "nodes"))

    # -- audio tasks (DESIGN.md "HTTP surface") -------------------------------------

    async def reserve(self, spec: dict[str, Any], engine: str | None = None) -> dict[str, Any]:
        """``POST /api/v1/tasks``: the task as stored (with its ``id``)."""
        params = {"engine": engine} if engine else {}
        response = await self._http.post("/api/v1/tasks", json=spec, params=params)
        return dict(_check(response, "reserve"))

    async def task(self, task_id: str) -> dict[str, Any]:
        return dict(_check(await self._http.get(f"/api/v1/tasks/{task_id}"), "task"))

    async def wait_task(
        self, task_id: str, states: frozenset[str] = frozenset({"ready"}),
        within_s: float = 30.0, poll: float = 0.1,
    ) -> dict[str, Any]:
        """Poll until the task reaches one of ``states``; HubError if it fails first."""
        deadline = time.monotonic() + within_s
        while True:
            task = await self.task(task_id)
            if task["state"] in states:
                return task
            if task["state"] in ("failed", "released"):
                raise HubError(409, f"task {task_id} is {task['state']}: {task.get('error')}")
            if time.monotonic() > deadline:
                raise HubError(504, f"task {task_id} still {task['state']} after {within_s} s")
            await asyncio.sleep(poll)

    async def render(self, task_id: str, format: str = "wav24") -> str:
        """``POST /api/v1/tasks/{id}/render``: the new render's id."""
        response = await self._http.post(f"/api/v1/tasks/{task_id}/render",
                                         json={"format": format})
        body = _check(response, "render")
        return str(body.get("render_id") or body.get("id"))

    async def render_state(self, task_id: str, render_id: str) -> dict[str, Any]:
        response = await self._http.get(f"/api/v1/tasks/{task_id}/renders/{render_id}")
        return dict(_check(response, "render state"))

    async def wait_render(
        self, task_id: str, render_id: str, within_s: float = 600.0, poll: float = 0.1,
        on_progress: Any = None,
    ) -> dict[str, Any]:
        """Poll the render until it ends; HubError unless it ends ``done``."""
        deadline = time.monotonic() + within_s
        while True:
            render = await self.render_state(task_id, render_id)
            if on_progress is not None and render.get("progress") is not None:
                on_progress(float(render["progress"]))
            if render["state"] in RENDER_FINAL:
                if render["state"] != "done":
                    raise HubError(409, f"render {render_id} {render['state']}: "
                                        f"{render.get('error')}")
                return render
            if time.monotonic() > deadline:
                raise HubError(504, f"render {render_id} not done after {within_s} s")
            await asyncio.sleep(poll)

    async def download(self, task_id: str, render_id: str, path: Path) -> Path:
        """Stream the finished file to ``path``."""
        url = f"/api/v1/tasks/{task_id}/renders/{render_id}/file"
        async with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                raise HubError(response.status_code, _detail(response), "download")
            with path.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
        return path

    async def release(self, task_id: str) -> None:
        """``DELETE /api/v1/tasks/{id}``: reservation cancel."""
        _check(await self._http.delete(f"/api/v1/tasks/{task_id}"), "release")

    async def tasks(self) -> list[dict[str, Any]]:
        return list(_check(await self._http.get("/api/v1/tasks"), "tasks"))

    async def play(self, task_id: str) -> dict[str, Any]:
        return dict(_check(await self._http.post(f"/api/v1/tasks/{task_id}/play"), "play"))

    async def stop(self, task_id: str) -> dict[str, Any]:
        return dict(_check(await self._http.post(f"/api/v1/tasks/{task_id}/stop"), "stop"))

    async def cancel_render(self, task_id: str, render_id: str) -> dict[str, Any]:
        url = f"/api/v1/tasks/{task_id}/renders/{render_id}/cancel"
        return dict(_check(await self._http.post(url), "cancel render"))

    def stream_url(self, task_id: str) -> str:
        """The WebSocket that carries the task's audio blocks and meters."""
        base = self.base_url.replace("https://", "wss://").replace("http://", "ws://")
        return f"{base}/api/v1/tasks/{task_id}/stream"

    # -- enrollment, runners and jobs (docs/runners.md "HTTP") -----------------------

    async def create_enrollment(self, kind: str, ttl_s: float | None = None) -> dict[str, Any]:
        """``POST /api/v1/enrollments``: ``{"token", "kind", "expires_at"}``, single use."""
        body: dict[str, Any] = {"kind": kind}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return dict(_check(await self._http.post("/api/v1/enrollments", json=body),
                           "enrollment"))

    async def runners(self) -> list[dict[str, Any]]:
        return list(_check(await self._http.get("/api/v1/runners"), "runners"))

    async def runner_logs(self, runner_id: str, lines: int = 200) -> str:
        """The tail of the runner's own log (HubError 503: not connected; 504: no answer)."""
        response = await self._http.get(f"/api/v1/runners/{runner_id}/logs",
                                        params={"lines": lines})
        if response.status_code >= 400:
            raise HubError(response.status_code, _detail(response), f"log of {runner_id}")
        return response.text

    async def revoke_runner(self, runner_id: str) -> dict[str, Any]:
        """``DELETE /api/v1/runners/{id}``: its secret is refused from now on."""
        response = await self._http.delete(f"/api/v1/runners/{runner_id}")
        return dict(_check(response, f"revoke {runner_id}"))

    async def submit_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/v1/jobs``; a 422's ``detail`` (the field locations) is on the HubError."""
        return dict(_check(await self._http.post("/api/v1/jobs", json=request), "submit job"))

    async def jobs(self, state: str | None = None) -> list[dict[str, Any]]:
        params = {"state": state} if state else {}
        return list(_check(await self._http.get("/api/v1/jobs", params=params), "jobs"))

    async def job(self, job_id: str) -> dict[str, Any]:
        return dict(_check(await self._http.get(f"/api/v1/jobs/{job_id}"), f"job {job_id}"))

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        response = await self._http.post(f"/api/v1/jobs/{job_id}/cancel")
        return dict(_check(response, f"cancel {job_id}"))

    async def job_log(self, job_id: str) -> str:
        """The job's output so far (complete once the job has ended)."""
        response = await self._http.get(f"/api/v1/jobs/{job_id}/logs")
        if response.status_code >= 400:
            raise HubError(response.status_code, _detail(response), f"log of {job_id}")
        return response.text

    async def download_artifact(self, job_id: str, name: str, path: Path) -> Path:
        """Stream a file the job produced to ``path``."""
        url = f"/api/v1/jobs/{job_id}/artifacts/{name}"
        async with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                raise HubError(response.status_code, _detail(response), f"artifact {name}")
            with path.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
        return path

    # -- component configs (DESIGN.md "HTTP surface") --------------------------------

    async def stored_config(self, component_id: str) -> dict[str, Any]:
        """``GET /api/v1/configs/{id}``: the stored overrides (not merged); ``{}`` if none."""
        response = await self._http.get(f"/api/v1/configs/{component_id}")
        return dict(_check(response, f"config of {component_id}"))

    async def put_config(self, component_id: str, config: Any) -> dict[str, Any]:
        """``PUT /api/v1/configs/{id}``: ``{"id", "stored", "merged", "pushed"}``.

        ``config`` is sent as given (the hub refuses anything but an object with 422).
        """
        response = await self._http.put(f"/api/v1/configs/{component_id}", json=config)
        return dict(_check(response, f"config of {component_id}"))
