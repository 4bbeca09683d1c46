"""The one adapter between the in-process hub and Qt: backend state in, Qt signals out.

Widgets never hold the hub. They hold a :class:`HubBridge`, which reads the hub's
registry and event log on the shared qasync loop and re-emits what it sees as Qt
signals: a snapshot of every component (the dicts ``GET /api/v1/components`` returns) and
each event as the SSE stream carries it. The snapshot is sent again once a second, since a
component's round trip and last-seen time change on every health check without an event.

A console attached to a hub elsewhere (``controlroom --hub URL``) holds a
:class:`ui.remote_bridge.RemoteHubBridge` instead: the same signals and methods, over
HTTP, SSE and WebSocket. Commands that already go over the hub's HTTP API (through
``_nodes_client``) work unchanged there; only what reads the in-process hub is overridden.

Signals carry ``object`` rather than ``list``/``dict``: PySide converts those through
QVariant, which copies every nested value and reorders a config's keys. The bridge makes
its own deep copy instead, so no view ever aliases the hub's live dicts.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from PySide6.QtCore import QObject, Signal

from backend.audio.spec import TaskSpec
from backend.hub import HealthSettings, Hub
from backend.hub.events import Event
from backend.hub.tasks.service import TaskError
from backend.node.client import HubClient, HubError, parse_sse
from backend.node.fold import RunEvent

log = logging.getLogger(__name__)

#: How many stored events a new window shows, so it opens with the recent history.
BACKLOG_EVENTS = 200
#: Enrollment tokens the console creates for agents it spawns live this long.
SPAWN_ENROLLMENT_TTL_S = 120.0
#: A run's event stream is reopened after this much silence, so a follower can stop.
FOLLOW_IDLE_S = 1.0


async def wait_for_followers(followers: set[asyncio.Task[Any]], grace_s: float) -> None:
    """Wait for stream followers that were asked to stop; cancel only the ones still
    running after ``grace_s``.

    Cancelling one in the middle of an HTTP read leaves httpcore a clean-up coroutine that
    is then closed outside its task; asked to stop, a follower ends at its next event or
    read timeout (``FOLLOW_IDLE_S``).
    """
    if not followers:
        return
    _done, pending = await asyncio.wait(followers, timeout=grace_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


class BridgeError(Exception):
    """A command the hub refused; ``message`` is what to show the operator.

    ``detail`` is the hub's structured answer when it has one (a 422's list of
    ``{"loc", "msg"}``), so a form can point at the field it names.
    """

    def __init__(self, message: str, status: int = 400, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail


class HubBridge(QObject):
    """Publishes the hub's components and events to Qt; start it from the running loop."""

    #: A full snapshot: ``list[dict]``, one ``Component.view()`` per component.
    components_changed = Signal(object)
    #: One hub event as ``Event.as_json()``: ``{"id", "ts", "type", "subject", "data"}``.
    event_received = Signal(object)
    #: The bridge fell behind the hub's event stream and skipped this many events.
    events_skipped = Signal(int)
    #: Live updates stopped because of an error (the message); the view is now stale.
    failed = Signal(str)
    #: Every audio task: ``list[dict]``, one ``Task.view()`` each, newest last.
    tasks_changed = Signal(object)
    #: ``(connected, message)``: a remote hub stopped answering, or answers again. The
    #: embedded hub lives in this process, so an embedded bridge never emits it.
    connection_changed = Signal(bool, str)

    def __init__(
        self,
        hub: Hub | None,
        base_url: str,
        *,
        refresh_s: float = 1.0,
        backlog: int = BACKLOG_EVENTS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._local_hub = hub  # None only for ui.remote_bridge.RemoteHubBridge
        self._base_url = base_url
        self._refresh_s = refresh_s
        self._backlog = backlog
        self._task: asyncio.Task[None] | None = None
        self._client: HubClient | None = None

    @property
    def _hub(self) -> Hub:
        """The in-process hub; a remote bridge overrides every method that reads it."""
        if self._local_hub is None:
            raise BridgeError("this console is attached to a remote hub; that is only "
                              "available with the embedded one", 501)
        return self._local_hub

    # -- what the views may know about the hub ----------------------------------------

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def is_remote(self) -> bool:
        """True when the hub runs elsewhere (``controlroom --hub URL``), not in-process."""
        return False

    @property
    def role(self) -> str:
        return self._hub.settings.role

    @property
    def data_dir(self) -> Path:
        return self._hub.settings.data_dir

    @property
    def admin_token_path(self) -> Path:
        """Where the operator token lives (mode 0600); shown, never read, by the views."""
        return self._hub.settings.data_dir / "admin.token"

    @property
    def health(self) -> HealthSettings:
        return self._hub.settings.health

    def snapshot(self) -> list[dict[str, Any]]:
        """Every component as the HTTP API shows it, deep-copied."""
        return [copy.deepcopy(c.view()) for c in self._hub.registry.components.values()]

    def tasks_snapshot(self) -> list[dict[str, Any]]:
        """Every audio task as ``GET /api/v1/tasks`` shows it, oldest first, deep-copied."""
        tasks = sorted(self._hub.tasks.tasks.values(), key=lambda t: t.created_at)
        return [copy.deepcopy(t.view()) for t in tasks]

    # -- commands (each one a coroutine on the shared loop) ---------------------------

    async def create_enrollment(self, kind: str,
                                ttl_s: float = SPAWN_ENROLLMENT_TTL_S) -> str:
        """A one-time enrollment token, made in-process (no HTTP round trip)."""
        enrollment = await self._hub.registry.create_enrollment(kind, ttl_s)
        return enrollment.token

    async def reserve_task(self, spec: TaskSpec, engine: str | None = None) -> dict[str, Any]:
        task = await self._task_call(self._hub.tasks.reserve(spec, engine))
        self._publish_tasks()
        return copy.deepcopy(task.view())

    async def play_task(self, task_id: str) -> None:
        await self._task_call(self._hub.tasks.play(task_id))

    async def stop_task(self, task_id: str) -> None:
        await self._task_call(self._hub.tasks.stop(task_id))

    async def render_task(self, task_id: str, fmt: str = "wav24") -> str:
        render = await self._task_call(self._hub.tasks.render(task_id, fmt, None))
        return str(render.render_id)

    async def cancel_render(self, task_id: str, render_id: str) -> None:
        await self._task_call(self._hub.tasks.cancel_render(task_id, render_id))

    async def release_task(self, task_id: str) -> None:
        await self._task_call(self._hub.tasks.release(task_id))

    async def set_params(self, task_id: str, iid: str, params: dict[str, Any]) -> None:
        await self._task_call(self._hub.tasks.set_params(task_id, iid, params))

    async def fetch_render(self, task_id: str, render_id: str) -> Path:
        """A finished render's file on this machine (raises :class:`BridgeError` if none).

        A coroutine because a remote hub's file must be downloaded first; the embedded
        hub's is already here, so this returns its path at once.
        """
        try:
            return self._hub.tasks.render_path(task_id, render_id)
        except TaskError as exc:
            raise BridgeError(exc.message, exc.status) from None

    def subscribe_stream(self, task_id: str) -> asyncio.Queue[bytes | str | None]:
        """The task's audio frames and meters JSON, as WebSocket subscribers get them."""
        try:
            return self._hub.tasks.subscribe(task_id)
        except TaskError as exc:
            raise BridgeError(exc.message, exc.status) from None

    def unsubscribe_stream(self, task_id: str, queue: asyncio.Queue[bytes | str | None]) -> None:
        self._hub.tasks.unsubscribe(task_id, queue)

    # -- nodes, flows, runs and locks (over the hub's own HTTP API, on the loop) --------

    @property
    def _nodes_client(self) -> HubClient:
        if self._client is None:
            self._client = HubClient(self._base_url, self._hub.operator_token)
        return self._client

    async def nodes(self) -> list[dict[str, Any]]:
        """Every node the hub knows, with its flow catalog (``GET /api/v1/nodes``)."""
        return list(await self._node_call(self._nodes_client.nodes(), "nodes"))

    async def start_run(self, node: str, flow: str, inputs: dict[str, Any] | None) -> str:
        return str(await self._node_call(
            self._nodes_client.node(node).start(flow, inputs), f"run {flow}"))

    async def run_state(self, node: str, fid: str) -> dict[str, Any]:
        return dict(await self._node_call(self._nodes_client.node(node).state(fid), fid))

    async def cancel_run(self, node: str, fid: str) -> None:
        await self._node_call(self._nodes_client.node(node).cancel(fid), f"cancel {fid}")

    async def follow_run(self, node: str, fid: str, on_event: Callable[[RunEvent], Any],
                         after: int = 0, stop: asyncio.Event | None = None,
                         idle_s: float = FOLLOW_IDLE_S) -> bool:
        """Call ``on_event`` for each event of the run until ``final``, or until ``stop``.

        True when the run reached ``final`` (see :meth:`_follow_sse` for how the stream
        is read, resumed and stopped).
        """
        async def each(offset: int, kind: str, data: Any) -> bool:
            event = RunEvent(offset, data["ts"], data["type"], data["data"])
            result = on_event(event)
            if asyncio.iscoroutine(result):
                await result
            return event.type == "final"

        end = await self._follow_sse(f"/api/v1/nodes/{node}/runs/{fid}/events", None,
                                     f"events of {fid}", each, after, stop, idle_s)
        return end is not None

    async def _follow_sse(self, path: str, params: dict[str, Any] | None, what: str,
                          each: Callable[[int, str, Any], Awaitable[bool]], after: int,
                          stop: asyncio.Event | None, idle_s: float) -> Any:
        """Read a resumable SSE stream until ``each`` says it ended (returns that item's
        data) or ``stop`` is set (returns None).

        A coroutine, not an async generator, and never meant to be cancelled mid-read:
        qasync installs no async-generator hooks, and httpcore's clean-up of a cancelled
        stream then runs outside any task. Instead the read times out after ``idle_s`` of
        silence, ``stop`` is checked, and the stream is opened again with
        ``Last-Event-ID`` (the hub or node sends exactly what was missed); a dropped
        connection is retried with backoff.
        """
        http = self._nodes_client._http  # the hub client's pooled, authorized connection
        last, delay = after, 0.05
        while stop is None or not stop.is_set():
            try:
                async with http.stream(
                    "GET", path, params=params, headers={"Last-Event-ID": str(last)},
                    timeout=httpx.Timeout(10, read=idle_s),
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise BridgeError(f"{what}: {response.status_code} "
                                          f"{response.text}", response.status_code)
                    async for offset, kind, data in parse_sse(response.aiter_lines()):
                        last, delay = offset, 0.05
                        if await each(offset, kind, data):
                            return data
                        if stop is not None and stop.is_set():
                            return None
                    continue  # the stream ended early: open it again at once
            except httpx.ReadTimeout:
                continue  # quiet for idle_s: check stop, then resume after `last`
            except httpx.TransportError:
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return None

    async def submit_candidate(self, node: str, fid: str, lid: str,
                               candidate: dict[str, Any]) -> tuple[int, Any]:
        """``(status, body)``: 200 released; 422 denied (``reason``) or invalid (``detail``)."""
        response = await self._nodes_client.node(node).submit(fid, lid, candidate)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body

    # -- runners and jobs (over HTTP) ---------------------------------------------------

    async def new_enrollment(self, kind: str, ttl_s: float | None = None) -> dict[str, Any]:
        """A fresh one-time token over HTTP (``token``, ``expires_at``), for another machine.

        Unlike :meth:`create_enrollment` (in-process, for agents this console spawns) it
        goes through the API, so it works the same against a remote hub.
        """
        return dict(await self._hub_call(self._nodes_client.create_enrollment(kind, ttl_s)))

    async def runners(self) -> list[dict[str, Any]]:
        return list(await self._hub_call(self._nodes_client.runners()))

    async def runner_logs(self, runner_id: str, lines: int = 200) -> str:
        """The runner's log tail; BridgeError 503 (not connected) or 504 (no answer)."""
        return str(await self._hub_call(self._nodes_client.runner_logs(runner_id, lines)))

    async def revoke_runner(self, runner_id: str) -> dict[str, Any]:
        return dict(await self._hub_call(self._nodes_client.revoke_runner(runner_id)))

    async def submit_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """The queued job; a refusal's ``detail`` names the fields (``needs.cpus``, ...)."""
        return dict(await self._hub_call(self._nodes_client.submit_job(request)))

    async def jobs(self) -> list[dict[str, Any]]:
        return list(await self._hub_call(self._nodes_client.jobs()))

    async def job(self, job_id: str) -> dict[str, Any]:
        return dict(await self._hub_call(self._nodes_client.job(job_id)))

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        return dict(await self._hub_call(self._nodes_client.cancel_job(job_id)))

    async def job_log(self, job_id: str) -> str:
        """The job's whole output so far."""
        return str(await self._hub_call(self._nodes_client.job_log(job_id)))

    async def save_artifact(self, job_id: str, name: str, path: Path) -> Path:
        return Path(await self._hub_call(
            self._nodes_client.download_artifact(job_id, name, path)))

    async def follow_job_log(self, job_id: str, on_output: Callable[[str], Any],
                             after: int = 0, stop: asyncio.Event | None = None,
                             idle_s: float = FOLLOW_IDLE_S) -> dict[str, Any] | None:
        """Call ``on_output`` with each piece of the job's output until it ends.

        Returns the ``end`` record (``{"state", "exit_code"}``), or None when ``stop``
        was set first. Resumed by byte offset, so nothing arrives twice
        (:meth:`_follow_sse`).
        """
        async def each(offset: int, kind: str, data: Any) -> bool:
            if kind == "end":
                return True
            result = on_output(str(data.get("text", "")))
            if asyncio.iscoroutine(result):
                await result
            return False

        end = await self._follow_sse(f"/api/v1/jobs/{job_id}/logs", {"follow": 1},
                                     f"log of {job_id}", each, after, stop, idle_s)
        return dict(end) if end is not None else None

    # -- config -----------------------------------------------------------------------

    async def stored_config(self, component_id: str) -> dict[str, Any]:
        """The component's stored overrides, ``{}`` if none (over HTTP: remote hubs too)."""
        return dict(await self._hub_call(self._nodes_client.stored_config(component_id)))

    async def put_config(self, component_id: str, config: Any) -> dict[str, Any]:
        """Store new overrides; the hub merges them and pushes the merge to the agent live.

        ``{"id", "stored", "merged", "pushed"}``; a refusal is a BridgeError whose
        ``detail`` is the hub's (a 422's list of ``{"loc", "msg"}``).
        """
        return dict(await self._hub_call(self._nodes_client.put_config(component_id, config)))

    @staticmethod
    async def _hub_call(call: Any) -> Any:
        """Await a HubClient call; its HubError becomes a BridgeError with the hub's words."""
        try:
            return await call
        except HubError as exc:
            message = exc.detail if isinstance(exc.detail, str) else str(exc)
            raise BridgeError(message, exc.status_code, exc.detail) from None
        except httpx.TransportError as exc:
            raise BridgeError(f"the hub did not answer ({type(exc).__name__}: {exc}); "
                              "check that it is running and reachable", 503) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @staticmethod
    async def _node_call(call: Any, what: str) -> Any:
        try:
            return await call
        except HubError as exc:
            raise BridgeError(str(exc), exc.status_code) from None

    @staticmethod
    async def _task_call(call: Any) -> Any:
        try:
            return await call
        except TaskError as exc:
            raise BridgeError(exc.message, exc.status) from None

    # -- life -------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` as a task; call it from a coroutine on the running loop.

        Not from ``__init__``: a bridge is usually built before the qasync loop runs, and a
        task cannot be created then (PITFALLS.md).
        """
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="hub-bridge")
        return self._task

    def stop(self) -> None:
        """Cancel live updates; safe to call twice, or from a signal handler."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait_stopped(self) -> None:
        """Wait for :meth:`run` to end after :meth:`stop` (never raises)."""
        if self._task is not None:
            await asyncio.wait({self._task})

    async def run(self) -> None:
        """Emit the recent history, then every new event and a snapshot each second."""
        try:
            await self._follow()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("live updates from the hub stopped")
            self.failed.emit(f"{type(exc).__name__}: {exc}")

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        events = self._hub.events
        # Subscribe before reading the store, so nothing appended in between is lost;
        # what arrives twice is skipped by id.
        queue = events.subscribe()
        try:
            last_id = await self._replay(0, self._backlog)
            self._publish()
            self._publish_tasks()
            next_refresh = loop.time() + self._refresh_s
            while True:
                wait = next_refresh - loop.time()
                if wait <= 0:
                    self._publish()
                    next_refresh = loop.time() + self._refresh_s
                    continue
                try:
                    async with asyncio.timeout(wait):
                        item = await queue.get()
                except TimeoutError:
                    continue
                if item is None:  # the hub dropped our queue: we fell too far behind
                    events.unsubscribe(queue)
                    queue = events.subscribe()
                    last_id = await self._replay(last_id, 1000)
                    self._publish()
                    continue
                if item.id <= last_id:
                    continue
                last_id = item.id
                self._emit(item)
                if item.type.startswith("component."):
                    self._publish()
                elif item.type.startswith("task."):
                    self._publish_tasks()
        finally:
            events.unsubscribe(queue)

    async def _replay(self, after: int, limit: int) -> int:
        """Emit the stored events after ``after``, at most the newest ``limit`` of them."""
        newest = await self._hub.events.last_id()
        start = max(after, newest - limit)
        if after and start > after:
            self.events_skipped.emit(start - after)
        for event in await self._hub.events.since(start, limit):
            self._emit(event)
            after = event.id
        return max(after, start)

    def _emit(self, event: Event) -> None:
        self.event_received.emit(copy.deepcopy(event.as_json()))

    def _publish(self) -> None:
        self.components_changed.emit(self.snapshot())

    def _publish_tasks(self) -> None:
        self.tasks_changed.emit(self.tasks_snapshot())
