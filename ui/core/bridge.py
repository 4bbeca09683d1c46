"""The one adapter between a hub and Qt: the hub's state in as Qt signals, commands out.

Widgets never hold a hub or an HTTP client. They hold a :class:`HubBridge`, which talks
to the hub through :class:`backend.client.HubClient`, the same client the command lines
and flows use, and re-emits what it learns as Qt signals. The embedded hub (in this
process, on the same qasync loop) and a hub on another machine are reached the same way,
over HTTP; they differ only in how the composition root starts and finds them
(``is_remote`` is that fact, for wording such as "the remote hub keeps running"):

- snapshots: ``GET /api/v1/components`` every ``refresh_s``, since a component's round
  trip and last-seen change without an event, and at once (at most every
  ``MIN_REFRESH_S``) after a ``component.*`` event; ``GET /api/v1/tasks`` after a
  ``task.*`` event (every change of a task is one), after a cut, and every
  ``TASKS_REFRESH_S`` in case. Fetching the tasks, with their specs, every second cost
  the console's loop a few milliseconds a second in one piece (measured:
  ``docs/performance.md``);
- events: the hub's event log, followed with :class:`backend.client.Follower` from the
  recent history on, resumed after any cut, so a hub that hangs, dies and comes back
  loses no event and repeats none; after a long cut only the newest are replayed;
- commands: one client method each; a refusal or silence raises
  :class:`backend.client.ClientError`, whose ``message`` the views show as is;
- a task's stream: its WebSocket, relayed into a queue the meters panel drains (binary
  audio frames, JSON meters text; None when the stream ends);
- render files: downloaded into a per-hub cache before they are opened or saved.

When the hub stops answering, ``connection_changed(False, why)`` is emitted and requests
are retried with a capped backoff; when it answers again, ``connection_changed(True,
...)``. Nothing here blocks the GUI thread.

Signals carry ``object`` rather than ``list``/``dict``: PySide converts those through
QVariant, which copies every nested value and reorders a config's keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs
from PySide6.QtCore import QObject, Signal

from backend.audio import TaskSpec
from backend.client import (
    ClientError,
    Follower,
    HealthInfo,
    HubClient,
    HubError,
    HubInfo,
    HubUnreachable,
    RunEvent,
    Verdict,
    attach,
    hub_slug,
    unreachable_hint,
    wrong_token,
)
from backend.tls import Trust
from ui.core.access import Access

log = logging.getLogger(__name__)

#: How many stored events a new window shows, so it opens with the recent history.
BACKLOG_EVENTS = 200
#: After a long cut, at most this many missed events are replayed; older ones are skipped
#: (and counted with ``events_skipped``).
CATCH_UP_EVENTS = 1000
#: Enrollment tokens the console creates for agents it spawns live this long.
SPAWN_ENROLLMENT_TTL_S = 120.0
#: A run's or job's stream is reopened after this much silence, so a follower can stop.
FOLLOW_IDLE_S = 1.0
#: A snapshot request slower than this means the hub is not answering (hung or gone).
POLL_TIMEOUT_S = 3.0
#: The hub sends an SSE comment every 15 s; longer silence on the event stream means the
#: connection is dead, so it is opened again.
EVENTS_IDLE_S = 20.0
#: The task list is fetched at least this often even without a ``task.*`` event.
TASKS_REFRESH_S = 10.0
#: Snapshots asked for by events are at least this far apart (a burst costs one).
MIN_REFRESH_S = 0.1
#: Retries after a failure wait 0.1 s, then twice as long each time, up to this.
RETRY_MAX_S = 5.0
#: Audio frames and meters waiting for the meters panel; the oldest go first when full.
STREAM_QUEUE = 64


#: What a full render cache is called in the message the console shows.
CACHE_ROOM = "the console's render cache"


def default_cache_dir() -> Path:
    """Where fetched renders are kept: the user cache, ``controlroom/renders``."""
    return Path(platformdirs.user_cache_dir("controlroom", appauthor=False)) / "renders"


async def wait_for_followers(followers: set[asyncio.Task[Any]], grace_s: float) -> None:
    """Wait for stream followers that were asked to stop; cancel only the ones still
    running after ``grace_s``.

    Asked to stop, a follower ends at its next event or read timeout (``FOLLOW_IDLE_S``);
    cancelling one in the middle of an HTTP read would leave the connection's clean-up
    to run outside any task.
    """
    if not followers:
        return
    _done, pending = await asyncio.wait(followers, timeout=grace_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


class HubBridge(QObject):
    """Publishes a hub's components, tasks and events to Qt; start it from the loop."""

    #: A full snapshot: ``list[dict]``, one ``GET /api/v1/components`` entry each.
    components_changed = Signal(object)
    #: One hub event: ``{"id", "ts", "type", "subject", "data"}``.
    event_received = Signal(object)
    #: The bridge fell behind the hub's event stream and skipped this many events.
    events_skipped = Signal(int)
    #: Live updates stopped because of an error (the message); the view is now stale.
    failed = Signal(str)
    #: Every audio task: ``list[dict]``, one ``GET /api/v1/tasks`` entry each.
    tasks_changed = Signal(object)
    #: ``(connected, message)``: the hub stopped answering, or answers again.
    connection_changed = Signal(bool, str)

    def __init__(
        self,
        client: HubClient,
        info: HubInfo,
        *,
        is_remote: bool,
        cache_dir: Path | None = None,
        refresh_s: float = 1.0,
        backlog: int = BACKLOG_EVENTS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.info = info
        self._is_remote = is_remote
        self._cache = (cache_dir or default_cache_dir()) / hub_slug(info.url)
        self._refresh_s = refresh_s
        self._backlog = backlog
        self._task: asyncio.Task[None] | None = None
        self._components: list[dict[str, Any]] = []
        self._tasks: list[dict[str, Any]] = []
        self._relays: dict[int, asyncio.Task[None]] = {}
        self._refresh_now = asyncio.Event()
        self._reconnect_now = asyncio.Event()
        self._tasks_stale = True
        self._tasks_due = 0.0
        #: Whether the hub answered the last request; starts True (it just did).
        self.connected = True

    @classmethod
    async def attach(cls, url: str, token: str, *, is_remote: bool = True, pin: str = "",
                     trust: Trust | None = None, **kwargs: Any) -> HubBridge:
        """Probe the hub (raises :class:`backend.client.AttachError` with the sentence to
        show), then a bridge to it. ``pin`` or ``trust``: see :func:`backend.client.attach`."""
        client, info = await attach(url, token, pin=pin, trust=trust)
        return cls(client, info, is_remote=is_remote, **kwargs)

    # -- what the views may know about the hub ----------------------------------------

    @property
    def base_url(self) -> str:
        return self.info.url

    @property
    def is_remote(self) -> bool:
        """True when the hub runs elsewhere (``controlroom --hub URL``), not in-process."""
        return self._is_remote

    @property
    def role(self) -> str:
        return self.info.role

    @property
    def access(self) -> Access:
        """What this console's token may do: the views grey out what it may not."""
        return Access(self.info.access)

    @property
    def data_dir(self) -> Path:
        """The hub's data dir on the hub's machine (shown, never opened here)."""
        return Path(self.info.data_dir)

    @property
    def admin_token_path(self) -> Path:
        """Where the operator token lives (mode 0600) on the hub's machine."""
        return Path(self.info.admin_token)

    @property
    def health(self) -> HealthInfo:
        return self.info.health

    @property
    def render_cache(self) -> Path:
        """Where this hub's renders are downloaded to."""
        return self._cache

    def snapshot(self) -> list[dict[str, Any]]:
        """The components as last fetched (deep-copied: no view aliases another's)."""
        return copy.deepcopy(self._components)

    def tasks_snapshot(self) -> list[dict[str, Any]]:
        """The audio tasks as last fetched, oldest first (deep-copied)."""
        return copy.deepcopy(self._tasks)

    # -- audio tasks ------------------------------------------------------------------

    async def create_enrollment(self, kind: str,
                                ttl_s: float = SPAWN_ENROLLMENT_TTL_S) -> str:
        """A one-time enrollment token for an agent this console spawns."""
        return str((await self.client.create_enrollment(kind, ttl_s))["token"])

    async def reserve_task(self, spec: TaskSpec, engine: str | None = None) -> dict[str, Any]:
        task = await self.client.reserve(spec.model_dump(mode="json"), engine)
        self._tasks_stale = True
        self._refresh_now.set()  # the new task shows at once
        return task

    async def wait_task(self, task_id: str, within_s: float = 30.0) -> dict[str, Any]:
        """Until the task is ready (engine and drivers accepted it); HubError if it fails
        or is still pending after ``within_s``."""
        return await self.client.wait_task(task_id, within_s=within_s)

    async def play_task(self, task_id: str) -> None:
        await self.client.play(task_id)

    async def stop_task(self, task_id: str) -> None:
        await self.client.stop(task_id)

    async def render_task(self, task_id: str, fmt: str = "wav24",
                          farm: dict[str, Any] | None = None) -> str:
        """Start a render; ``farm`` splits it over runners and the engine
        (``{"runners": 2}`` or ``{"runners": ["r1", "r2"]}``), None renders on the engine."""
        return await self.client.render(task_id, fmt, farm=farm)

    async def cancel_render(self, task_id: str, render_id: str) -> None:
        await self.client.cancel_render(task_id, render_id)

    async def release_task(self, task_id: str) -> None:
        await self.client.release(task_id)

    async def set_params(self, task_id: str, iid: str, params: dict[str, Any]) -> None:
        await self.client.set_params(task_id, iid, params)

    async def fetch_render(self, task_id: str, render_id: str) -> Path:
        """A finished render's file on this machine, downloaded into the cache once.

        A finished render never changes, so a file in the cache is the render (the
        client writes it whole or not at all).
        """
        target = self._cache / task_id / f"{render_id}.wav"
        if await asyncio.to_thread(target.is_file):
            return target
        await self.client.download(task_id, render_id, target, room=CACHE_ROOM)
        log.info("fetched render %s of %s to %s", render_id, task_id, target)
        return target

    def subscribe_stream(self, task_id: str) -> asyncio.Queue[bytes | str | None]:
        """The task's frames from its WebSocket, in a queue; ``None`` ends it (the task
        ended, is unknown, or the hub went away)."""
        queue: asyncio.Queue[bytes | str | None] = asyncio.Queue(STREAM_QUEUE)
        relay = asyncio.get_running_loop().create_task(
            self._relay(task_id, queue), name=f"stream-{task_id}")
        self._relays[id(queue)] = relay
        return queue

    def unsubscribe_stream(self, task_id: str, queue: asyncio.Queue[bytes | str | None]) -> None:
        relay = self._relays.pop(id(queue), None)
        if relay is not None and not relay.done():
            relay.cancel()

    async def _relay(self, task_id: str, queue: asyncio.Queue[bytes | str | None]) -> None:
        try:
            async with self.client.task_stream(task_id) as stream:
                async for message in stream:
                    _offer(queue, message)
            log.info("stream of %s closed: %s", task_id, stream.closed_because)
        except ClientError as exc:
            log.warning("stream of %s: %s", task_id, exc.message)
        finally:
            _offer(queue, None)

    # -- nodes, flows, runs and locks -------------------------------------------------

    async def nodes(self) -> list[dict[str, Any]]:
        """Every node the hub knows, with its flow catalog."""
        return await self.client.nodes()

    async def start_run(self, node: str, flow: str, inputs: dict[str, Any] | None) -> str:
        return await self.client.node(node).start(flow, inputs)

    async def run_state(self, node: str, fid: str) -> dict[str, Any]:
        return await self.client.node(node).state(fid)

    async def cancel_run(self, node: str, fid: str) -> None:
        await self.client.node(node).cancel(fid)

    async def follow_run(self, node: str, fid: str, on_event: Callable[[RunEvent], Any],
                         after: int = 0, stop: asyncio.Event | None = None,
                         idle_s: float = FOLLOW_IDLE_S) -> bool:
        """Call ``on_event`` for each event of the run until ``final`` (True) or until
        ``stop`` is set (False); the stream resumes after every cut."""
        events = self.client.node(node).events(fid, after, stop=stop, idle_s=idle_s)
        async with contextlib.aclosing(events):
            async for event in events:
                result = on_event(event)
                if asyncio.iscoroutine(result):
                    await result
                if event.type == "final":
                    return True
        return False

    async def submit_candidate(self, node: str, fid: str, lid: str,
                               candidate: dict[str, Any]) -> Verdict:
        """200 released; 422 denied (``reason``) or invalid (``detail``); see Verdict."""
        return await self.client.node(node).submit(fid, lid, candidate)

    # -- runners and jobs -------------------------------------------------------------

    async def new_enrollment(self, kind: str, ttl_s: float | None = None) -> dict[str, Any]:
        """A fresh one-time token (``token``, ``expires_at``) for another machine."""
        return await self.client.create_enrollment(kind, ttl_s)

    async def runners(self) -> list[dict[str, Any]]:
        return await self.client.runners()

    async def runner_logs(self, runner_id: str, lines: int = 200) -> str:
        """The runner's log tail; HubError 503 (not connected) or 504 (no answer)."""
        return await self.client.runner_logs(runner_id, lines)

    async def revoke_runner(self, runner_id: str) -> dict[str, Any]:
        return await self.client.revoke_runner(runner_id)

    async def submit_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """The queued job; a refusal's ``detail`` names the fields (``needs.cpus``, ...)."""
        return await self.client.submit_job(request)

    async def jobs(self) -> list[dict[str, Any]]:
        return await self.client.jobs()

    async def job(self, job_id: str) -> dict[str, Any]:
        return await self.client.job(job_id)

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        return await self.client.cancel_job(job_id)

    async def job_log(self, job_id: str) -> str:
        """The job's whole output so far."""
        return await self.client.job_log(job_id)

    async def save_artifact(self, job_id: str, name: str, path: Path) -> Path:
        return await self.client.download_artifact(job_id, name, path)

    async def follow_job_log(self, job_id: str, on_output: Callable[[str], Any],
                             after: int = 0, stop: asyncio.Event | None = None,
                             idle_s: float = FOLLOW_IDLE_S) -> dict[str, Any] | None:
        """Call ``on_output`` with each piece of the job's output until it ends.

        Returns the ``end`` record (``{"state", "exit_code"}``), or None when ``stop``
        was set first. Resumed by byte offset, so nothing arrives twice.
        """
        records = self.client.job_output(job_id, after, stop=stop, idle_s=idle_s)
        async with contextlib.aclosing(records):
            async for record in records:
                if record.event == "end":
                    return dict(record.data)
                result = on_output(str(record.data.get("text", "")))
                if asyncio.iscoroutine(result):
                    await result
        return None

    # -- config -----------------------------------------------------------------------

    async def stored_config(self, component_id: str) -> dict[str, Any]:
        """The component's stored overrides, ``{}`` if none."""
        return await self.client.stored_config(component_id)

    async def put_config(self, component_id: str, config: Any) -> dict[str, Any]:
        """Store new overrides; the hub merges them and pushes the merge to the agent live.

        ``{"id", "stored", "merged", "pushed"}``; a refusal is a HubError whose
        ``detail`` is the hub's (a 422's list of ``{"loc", "msg"}``).
        """
        return await self.client.put_config(component_id, config)

    # -- life -------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` as a task; call it from a coroutine on the running loop (a
        bridge is usually built before the qasync loop runs, when no task can be made)."""
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

    async def aclose(self) -> None:
        """Stop the stream relays and close the client's connections."""
        relays = [r for r in self._relays.values() if not r.done()]
        for relay in relays:
            relay.cancel()
        if relays:
            await asyncio.wait(relays)
        self._relays.clear()
        await self.client.aclose()

    async def run(self) -> None:
        """Snapshots and events side by side until stopped; an unexpected error in either
        stops both and is reported with ``failed``."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._poll(), name="hub-snapshots")
                group.create_task(self._follow_events(), name="hub-events")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("live updates from the hub stopped")
            self.failed.emit(f"{type(exc).__name__}: {exc}")

    async def _poll(self) -> None:
        """A snapshot each ``refresh_s`` (or soon when asked); backoff while away."""
        loop = asyncio.get_running_loop()
        delay = self._refresh_s
        while True:
            self._refresh_now.clear()
            started = loop.time()
            try:
                await self._refresh()
            except HubUnreachable as exc:
                self._set_connected(False, unreachable_hint(self.base_url, exc.reason))
                delay = min(max(delay * 2, 0.5), RETRY_MAX_S)
            except ClientError as exc:
                self._set_connected(False, f"the hub at {self.base_url} answered: "
                                           f"{exc.message}")
                delay = min(max(delay * 2, 0.5), RETRY_MAX_S)
            except ValueError:
                self._set_connected(False, f"{self.base_url} answered with something that "
                                           "is not JSON")
                delay = min(max(delay * 2, 0.5), RETRY_MAX_S)
            else:
                self._set_connected(True, f"the hub at {self.base_url} answers again")
                delay = self._refresh_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._refresh_now.wait()
            await asyncio.sleep(max(0.0, started + MIN_REFRESH_S - loop.time()))

    async def _refresh(self) -> None:
        self._components = await self.client.components(within_s=POLL_TIMEOUT_S)
        self.components_changed.emit(self.snapshot())
        now = asyncio.get_running_loop().time()
        if self._tasks_stale or now >= self._tasks_due:
            self._tasks_stale = False  # before the await: an event meanwhile marks it again
            try:
                self._tasks = await self.client.tasks(within_s=POLL_TIMEOUT_S)
            except BaseException:
                self._tasks_stale = True
                raise
            self._tasks_due = now + TASKS_REFRESH_S
            self.tasks_changed.emit(self.tasks_snapshot())

    def _set_connected(self, connected: bool, message: str) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        if connected:
            log.info("%s", message)
            self._reconnect_now.set()  # the event stream need not wait out its backoff
        else:
            log.warning("hub not answering: %s", message)
        self.connection_changed.emit(connected, message)

    async def _follow_events(self) -> None:
        """The event log from the recent history on, resumed after every cut."""
        loop = asyncio.get_running_loop()
        start = max(0, self.info.last_event_id - self._backlog)
        follower = Follower(start, now=loop.time(), first_delay_s=0.1,
                            max_delay_s=RETRY_MAX_S)

        async def rebase() -> None:
            """After a cut: the hub's log may have restarted, or run far ahead."""
            try:
                newest = (await self.client.about()).last_event_id
            except HubError as exc:
                if exc.status == 401:
                    self.failed.emit(wrong_token(self.base_url, exc.detail))
                return
            except (ClientError, ValueError, KeyError, TypeError):
                return  # the next attempt will fail or succeed on its own
            self._tasks_stale = True  # task events may have been missed while cut
            moved = follower.rebase(newest, backlog=self._backlog, catch_up=CATCH_UP_EVENTS)
            if moved is None:
                return
            if moved.restarted:
                log.warning("the hub's event log restarted at %s", newest)
            elif moved.skipped:
                self.events_skipped.emit(moved.skipped)

        events = self.client.events(follower, idle_s=EVENTS_IDLE_S,
                                    wake=self._reconnect_now, on_cut=rebase)
        async with contextlib.aclosing(events):
            async for record in events:
                self.event_received.emit(record.data)
                kind = str(record.data.get("type", ""))
                if kind.startswith("task."):
                    self._tasks_stale = True
                    self._refresh_now.set()
                elif kind.startswith("component."):
                    self._refresh_now.set()


def _offer(queue: asyncio.Queue[bytes | str | None], item: bytes | str | None) -> None:
    """Put without waiting; a full queue loses its oldest item (skip, never block)."""
    with contextlib.suppress(asyncio.QueueFull):
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(item)
