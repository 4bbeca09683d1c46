"""The client of the hub's ``/api/v1``: every route as a typed method.

The console, the ``task`` and ``runner`` command lines, flows (``ctx.hub``), agents that
talk HTTP to their hub, the benchmarks and the tests all reach the hub through
:class:`HubClient`. It is the one place that knows URLs, the token header, timeouts, how
an answer is read and how a failure is reported (:mod:`backend.client._errors`), so that a
change to any of those is made once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from backend.client._errors import HubError
from backend.client._files import save
from backend.client._follower import Follower, Record
from backend.client._http import body, check, send, tls_for, unreachable
from backend.client._info import HubInfo
from backend.client._media import file_chunks, file_sha256, save_verified
from backend.client._node import NodeClient
from backend.client._routes import route
from backend.client._stream import follow
from backend.client._taskstream import TaskStream
from backend.tls import Trust

#: Render states after which nothing changes.
RENDER_FINAL = frozenset({"done", "failed", "cancelled"})


class HubClient:
    """One hub, one token, one pool of kept-alive connections; close with :meth:`aclose`.

    ``token`` goes in ``Authorization: Bearer`` on every request (an operator token, a
    node's token, or none for ``GET health`` alone); ``headers`` adds more (an agent's
    ``X-Agent-Id``/``X-Agent-Secret``).
    """

    def __init__(self, base_url: str, token: str = "", *, timeout: float = 30.0,
                 headers: dict[str, str] | None = None, max_connections: int = 100,
                 trust: Trust | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.trust = trust or Trust()
        all_headers = {"Authorization": f"Bearer {token}"} if token else {}
        all_headers.update(headers or {})
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, headers=all_headers,
            verify=tls_for(self.base_url, self.trust),
            limits=httpx.Limits(max_connections=max_connections))

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing --------------------------------------------------------------------

    async def _send(self, request: Awaitable[httpx.Response], what: str) -> httpx.Response:
        return await send(self.base_url, request, what)

    async def _get(self, path: str, what: str, within_s: float | None = None,
                   **kwargs: Any) -> Any:
        """GET and read the JSON answer; ``within_s`` overrides the client's timeout."""
        if within_s is not None:
            kwargs["timeout"] = within_s
        return body(await self._send(self._http.get(path, **kwargs), what))

    async def _post(self, path: str, what: str, within_s: float | None = None,
                    **kwargs: Any) -> Any:
        if within_s is not None:
            kwargs["timeout"] = within_s
        return body(await self._send(self._http.post(path, **kwargs), what))

    async def _save(self, path: str, target: Path, what: str,
                    room: str = "the download folder") -> Path:
        try:
            async with self._http.stream("GET", path) as response:
                if response.status_code != 200:
                    await response.aread()
                    check(response, what)
                return await save(response, target, what, room)
        except httpx.TransportError as exc:
            raise unreachable(self.base_url, exc) from None

    # -- the hub itself --------------------------------------------------------------

    @route("GET", "/api/v1/health")
    async def health(self, *, within_s: float | None = None) -> dict[str, Any]:
        """Liveness and component counts; the one route that needs no token."""
        return dict(await self._get("/api/v1/health", "health", within_s))

    @route("GET", "/api/v1/hub")
    async def about(self, *, within_s: float | None = None) -> HubInfo:
        """What the hub says about itself (raises KeyError/ValueError if it is not a hub)."""
        return HubInfo.from_json(self.base_url, await self._get("/api/v1/hub", "hub", within_s))

    @route("GET", "/api/v1/events")
    def events(self, follower: Follower, *, stop: asyncio.Event | None = None,
               idle_s: float | None = None, wake: asyncio.Event | None = None,
               on_cut: Callable[[], Awaitable[None]] | None = None,
               ) -> AsyncGenerator[Record, None]:
        """The hub's event log from ``follower.last_id`` on, resumed after every cut; each
        record's data is one event (``id``, ``ts``, ``type``, ``subject``, ``data``).

        The follower's generator itself, not one wrapped in another: a busy log passes
        hundreds of records a second through it, on the console's loop."""
        return follow(self._http, "/api/v1/events", follower, what="events", stop=stop,
                      idle_s=idle_s, wake=wake, on_cut=on_cut)

    # -- components and their configs ------------------------------------------------

    @route("GET", "/api/v1/components")
    async def components(self, *, within_s: float | None = None) -> list[dict[str, Any]]:
        return list(await self._get("/api/v1/components", "components", within_s))

    @route("GET", "/api/v1/components/{component_id}")
    async def component(self, component_id: str) -> dict[str, Any]:
        return dict(await self._get(f"/api/v1/components/{component_id}", component_id))

    @route("GET", "/api/v1/configs/{component_id}")
    async def stored_config(self, component_id: str) -> dict[str, Any]:
        """The stored overrides (not merged); ``{}`` if none."""
        return dict(await self._get(f"/api/v1/configs/{component_id}",
                                    f"config of {component_id}"))

    @route("PUT", "/api/v1/configs/{component_id}")
    async def put_config(self, component_id: str, config: Any) -> dict[str, Any]:
        """Store overrides: ``{"id", "stored", "merged", "pushed"}``. ``config`` is sent as
        given (the hub refuses anything but an object with 422)."""
        response = await self._send(
            self._http.put(f"/api/v1/configs/{component_id}", json=config),
            f"config of {component_id}")
        return dict(body(response))

    @route("POST", "/api/v1/enrollments")
    async def create_enrollment(self, kind: str, ttl_s: float | None = None,
                                ) -> dict[str, Any]:
        """A one-time token: ``{"token", "kind", "expires_at"}``, single use."""
        request: dict[str, Any] = {"kind": kind}
        if ttl_s is not None:
            request["ttl_s"] = ttl_s
        return dict(await self._post("/api/v1/enrollments", f"enrollment for a {kind}",
                                     json=request))

    # -- audio tasks -----------------------------------------------------------------

    @route("POST", "/api/v1/tokens")
    async def create_token(self, name: str, kind: str) -> dict[str, Any]:
        """A named ``operator`` or ``viewer`` token: ``{"name", "kind", "token"}``, the
        secret shown this once."""
        return dict(await self._post("/api/v1/tokens", f"token {name}",
                                     json={"name": name, "kind": kind}))

    @route("GET", "/api/v1/tokens")
    async def tokens(self) -> list[dict[str, Any]]:
        """Named tokens: name, kind, creation and last use; never a secret."""
        return list(await self._get("/api/v1/tokens", "the tokens"))

    @route("DELETE", "/api/v1/tokens/{name}")
    async def revoke_token(self, name: str) -> dict[str, Any]:
        """Revoke at once; that token's open event streams close."""
        response = await self._send(self._http.delete(f"/api/v1/tokens/{name}"),
                                    f"revoke token {name}")
        return dict(body(response) or {})

    @route("GET", "/api/v1/tls")
    async def tls(self) -> dict[str, Any]:
        """The certificate served (``fingerprint``) and the one announced (``next``)."""
        return dict(await self._get("/api/v1/tls", "the hub's certificate"))

    @route("POST", "/api/v1/tls/next")
    async def announce_next_certificate(self, certificate: str | None = None
                                        ) -> dict[str, Any]:
        """Make (or, given a CA-issued PEM, record) the certificate served from the hub's
        next start and tell every connected agent: ``{"fingerprint", "told"}``."""
        request = {"certificate": certificate} if certificate else None
        return dict(await self._post("/api/v1/tls/next", "announce the next certificate",
                                     json=request))

    @route("POST", "/api/v1/tasks")
    async def reserve(self, spec: dict[str, Any], engine: str | None = None,
                      ) -> dict[str, Any]:
        """The task as stored (with its ``id``), pending until engine and drivers accept."""
        params = {"engine": engine} if engine else {}
        return dict(await self._post("/api/v1/tasks", "reserve", json=spec, params=params))

    @route("GET", "/api/v1/tasks")
    async def tasks(self, *, within_s: float | None = None) -> list[dict[str, Any]]:
        return list(await self._get("/api/v1/tasks", "tasks", within_s))

    @route("GET", "/api/v1/tasks/{task_id}")
    async def task(self, task_id: str) -> dict[str, Any]:
        return dict(await self._get(f"/api/v1/tasks/{task_id}", f"task {task_id}"))

    async def wait_task(self, task_id: str, states: frozenset[str] = frozenset({"ready"}),
                        within_s: float = 30.0, poll: float = 0.1) -> dict[str, Any]:
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

    @route("POST", "/api/v1/tasks/{task_id}/release")
    async def release(self, task_id: str) -> dict[str, Any]:
        """Reservation cancel: engine and drivers drop the spec."""
        response = await self._send(self._http.post(f"/api/v1/tasks/{task_id}/release"), "release")
        return dict(body(response) or {})

    @route("POST", "/api/v1/tasks/{task_id}/play")
    async def play(self, task_id: str) -> dict[str, Any]:
        return dict(await self._post(f"/api/v1/tasks/{task_id}/play", "play"))

    @route("POST", "/api/v1/tasks/{task_id}/stop")
    async def stop(self, task_id: str) -> dict[str, Any]:
        return dict(await self._post(f"/api/v1/tasks/{task_id}/stop", "stop"))

    @route("PATCH", "/api/v1/tasks/{task_id}/instances/{instance_id}")
    async def set_params(self, task_id: str, instance_id: str,
                         params: dict[str, Any]) -> dict[str, Any]:
        """Change an instance's parameters live (while ready or playing)."""
        response = await self._send(
            self._http.patch(f"/api/v1/tasks/{task_id}/instances/{instance_id}",
                             json=params), f"parameters of {instance_id}")
        return dict(body(response) or {})

    @route("POST", "/api/v1/tasks/{task_id}/render")
    async def render(self, task_id: str, format: str = "wav24",
                     segment: Sequence[float] | None = None,
                     farm: dict[str, Any] | None = None) -> str:
        """Start an offline render; the new render's id.

        ``farm`` splits it over runners and the engine: ``{"runners": 2}`` (the first two
        that can take it) or ``{"runners": ["r1", "r2"]}`` (those)."""
        request: dict[str, Any] = {"format": format}
        if segment is not None:
            request["segment"] = list(segment)
        if farm is not None:
            request["farm"] = farm
        answer = await self._post(f"/api/v1/tasks/{task_id}/render", "render", json=request)
        return str(answer.get("render_id") or answer.get("id"))

    @route("GET", "/api/v1/tasks/{task_id}/renders/{render_id}")
    async def render_state(self, task_id: str, render_id: str) -> dict[str, Any]:
        return dict(await self._get(f"/api/v1/tasks/{task_id}/renders/{render_id}",
                                    f"render {render_id}"))

    async def wait_render(self, task_id: str, render_id: str, within_s: float = 600.0,
                          poll: float = 0.1,
                          on_progress: Callable[..., object] | None = None,
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

    @route("POST", "/api/v1/tasks/{task_id}/renders/{render_id}/cancel")
    async def cancel_render(self, task_id: str, render_id: str) -> dict[str, Any]:
        return dict(await self._post(f"/api/v1/tasks/{task_id}/renders/{render_id}/cancel",
                                     "cancel render"))

    @route("GET", "/api/v1/tasks/{task_id}/renders/{render_id}/file")
    async def download(self, task_id: str, render_id: str, path: Path,
                       room: str = "the download folder") -> Path:
        """Stream the finished file to ``path`` (whole, or not there at all); a full disk
        is a 507 :class:`ClientError` naming ``room`` (what ``path`` is) and its folder."""
        return await self._save(f"/api/v1/tasks/{task_id}/renders/{render_id}/file", path,
                                f"render {render_id}", room)

    @route("WS", "/api/v1/tasks/{task_id}/stream")
    def task_stream(self, task_id: str) -> TaskStream:
        """The task's audio blocks and meters, live (see :class:`TaskStream`)."""
        base = self.base_url.replace("https://", "wss://").replace("http://", "ws://")
        return TaskStream(f"{base}/api/v1/tasks/{task_id}/stream", self._token, self.trust)

    # -- runners and jobs ------------------------------------------------------------

    @route("GET", "/api/v1/runners")
    async def runners(self) -> list[dict[str, Any]]:
        return list(await self._get("/api/v1/runners", "runners"))

    @route("GET", "/api/v1/runners/{runner_id}")
    async def runner(self, runner_id: str) -> dict[str, Any]:
        return dict(await self._get(f"/api/v1/runners/{runner_id}", f"runner {runner_id}"))

    @route("GET", "/api/v1/runners/{runner_id}/logs")
    async def runner_logs(self, runner_id: str, lines: int = 200) -> str:
        """The tail of the runner's own log (HubError 503: not connected; 504: no answer)."""
        response = await self._send(
            self._http.get(f"/api/v1/runners/{runner_id}/logs", params={"lines": lines}),
            f"log of {runner_id}")
        return response.text

    @route("DELETE", "/api/v1/runners/{runner_id}")
    async def revoke_runner(self, runner_id: str) -> dict[str, Any]:
        """Its secret is refused from now on."""
        response = await self._send(self._http.delete(f"/api/v1/runners/{runner_id}"),
                                    f"revoke {runner_id}")
        return dict(body(response))

    @route("POST", "/api/v1/jobs")
    async def submit_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """The queued job; a 422's ``detail`` names the fields (``needs.cpus``, ...)."""
        return dict(await self._post("/api/v1/jobs", "submit job", json=request))

    @route("GET", "/api/v1/jobs")
    async def jobs(self, state: str | None = None) -> list[dict[str, Any]]:
        params = {"state": state} if state else {}
        return list(await self._get("/api/v1/jobs", "jobs", params=params))

    @route("GET", "/api/v1/jobs/{job_id}")
    async def job(self, job_id: str) -> dict[str, Any]:
        return dict(await self._get(f"/api/v1/jobs/{job_id}", f"job {job_id}"))

    @route("POST", "/api/v1/jobs/{job_id}/cancel")
    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        return dict(await self._post(f"/api/v1/jobs/{job_id}/cancel", f"cancel {job_id}"))

    @route("GET", "/api/v1/jobs/{job_id}/logs")
    async def job_log(self, job_id: str) -> str:
        """The job's output so far (complete once the job has ended)."""
        response = await self._send(self._http.get(f"/api/v1/jobs/{job_id}/logs"),
                                    f"log of {job_id}")
        return response.text

    async def job_output(self, job_id: str, after: int = 0, *,
                         stop: asyncio.Event | None = None, idle_s: float | None = None,
                         ) -> AsyncGenerator[Record, None]:
        """The job's output as it is written (``output`` records, ``{"text"}``), then one
        ``end`` record (``{"state", "exit_code"}``); resumed by byte offset after cuts."""
        follower = Follower(after, now=asyncio.get_running_loop().time(),
                            terminal=frozenset({"end"}))
        async for record in follow(self._http, f"/api/v1/jobs/{job_id}/logs", follower,
                                   what=f"log of {job_id}", params={"follow": 1},
                                   stop=stop, idle_s=idle_s):
            yield record
            if record.event == "end":
                return

    @route("GET", "/api/v1/jobs/{job_id}/artifacts/{name}")
    async def download_artifact(self, job_id: str, name: str, path: Path) -> Path:
        """Stream a file the job produced to ``path``."""
        return await self._save(f"/api/v1/jobs/{job_id}/artifacts/{name}", path,
                                f"artifact {name}")

    @route("PUT", "/api/v1/jobs/{job_id}/artifacts/{name}")
    async def upload_artifact(self, job_id: str, name: str, content: bytes | Path) -> None:
        """A runner hands the hub a file its job produced (agent credentials); a path is
        streamed from disk, never read whole (a farm part's streams are 46 MB per minute
        of audio each)."""
        body = file_chunks(content) if isinstance(content, Path) else content
        await self._send(self._http.put(f"/api/v1/jobs/{job_id}/artifacts/{name}",
                                        content=body), f"artifact {name}")

    # -- media -----------------------------------------------------------------------

    @route("PUT", "/api/v1/media/{sha256}")
    async def upload_media(self, path: Path, sha256: str | None = None,
                           sending: Callable[[int], object] | None = None) -> dict[str, Any]:
        """Upload the file at ``path`` as media (its SHA-256, computed in a thread unless
        given): the entry (``sha256``, ``bytes``, ``created_at``, ``used_by``) plus
        ``uploaded``, False when the hub already held it (asked first, so nothing is sent
        twice; ``sending`` is told the size when the bytes do go). Streamed from disk,
        never read whole; HubError 413 over the hub's ``--media-limit-mb``, 422 if the
        file changed while it was sent."""
        if sha256 is None:
            sha256 = await asyncio.to_thread(file_sha256, path)
        found = await self.media_info(sha256)
        if found is not None:
            return {**found, "uploaded": False}
        size = await asyncio.to_thread(lambda: path.stat().st_size)
        if sending is not None:
            sending(size)
        response = await self._send(self._http.put(
            f"/api/v1/media/{sha256}", content=file_chunks(path),
            headers={"Content-Type": "application/octet-stream",
                     "Content-Length": str(size)}),
            f"upload of {path.name}")
        return {**body(response), "uploaded": response.status_code == 201}

    @route("GET", "/api/v1/media/{sha256}/info")
    async def media_info(self, sha256: str) -> dict[str, Any] | None:
        """The hub's entry for ``sha256`` (``bytes``, ``created_at``, ``used_by``), or None
        when it holds no such media."""
        try:
            return dict(await self._get(f"/api/v1/media/{sha256}/info", f"media {sha256}"))
        except HubError as exc:
            if exc.status == 404:
                return None
            raise

    @route("GET", "/api/v1/media")
    async def list_media(self) -> list[dict[str, Any]]:
        """Every file the hub holds, oldest first, each with ``used_by`` (task ids)."""
        return list(await self._get("/api/v1/media", "media"))

    @route("DELETE", "/api/v1/media/{sha256}")
    async def delete_media(self, sha256: str) -> None:
        """Remove it from the hub (HubError 409 naming the tasks that still use it)."""
        await self._send(self._http.delete(f"/api/v1/media/{sha256}"), f"media {sha256}")

    @route("GET", "/api/v1/media/{sha256}")
    async def fetch_media(self, sha256: str, dest: Path) -> int:
        """Stream the media to ``dest`` (through ``dest.with_suffix('.part')``, renamed
        only once its SHA-256 is checked): the bytes written. A wrong hash or a cut leaves
        nothing at ``dest`` and raises :class:`ClientError`."""
        try:
            async with self._http.stream("GET", f"/api/v1/media/{sha256}") as response:
                if response.status_code != 200:
                    await response.aread()
                    check(response, f"media {sha256}")
                return await save_verified(response, dest, sha256)
        except httpx.TransportError as exc:
            raise unreachable(self.base_url, exc) from None

    # -- nodes -----------------------------------------------------------------------

    @route("GET", "/api/v1/nodes")
    async def nodes(self) -> list[dict[str, Any]]:
        """Every node the hub knows, with its flow catalog."""
        return list(await self._get("/api/v1/nodes", "nodes"))

    @route("POST", "/api/v1/nodes/{name}/token")
    async def link_node(self, name: str, agent_id: str, secret: str, token: str) -> None:
        """A standalone node hands the hub its own token, proving who it is."""
        await self._post(f"/api/v1/nodes/{name}/token", f"token of node {name}",
                         json={"agent_id": agent_id, "secret": secret, "token": token})

    @route("POST", "/api/v1/nodes/{name}/unregister")
    async def unregister_node(self, name: str, agent_id: str, secret: str,
                              within_s: float | None = None) -> None:
        """A standalone node leaves the hub's directory as it shuts down."""
        await self._post(f"/api/v1/nodes/{name}/unregister", f"unregister node {name}",
                         json={"agent_id": agent_id, "secret": secret}, within_s=within_s)

    @route("GET", "/api/v1/nodes/{name}/{path}")
    @route("POST", "/api/v1/nodes/{name}/{path}")
    def node(self, name: str) -> NodeClient:
        """The node ``name``'s routes through the hub's proxy (the hub's token suffices)."""
        return NodeClient(self._http, f"/api/v1/nodes/{name}")
