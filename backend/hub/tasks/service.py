"""Audio tasks on the hub: reserve, propagate, play, render, stop, cancel, release, recover.

Desired state is what the operator asked (the events the API appends); actual state is
what the engine and drivers report. This service turns commands into events and messages,
turns the agents' reports into events, and reconciles: a component that goes down fails the
play or render that needs it (and stops the rest of the chain); one that registers again is
sent the specs of its live tasks again, and the task returns to ready when all accept.

Insert blocks go straight from the engine to a driver over the driver's own link when it
has one (``backend/protocol/insertlink.py``): the hub keeps each driver's link (in memory,
never stored or shown, as it holds the key) and hands the task's to the engine with each
play and render. It relays audio without decoding it: insert frames for drivers without a
link (or one the engine cannot reach), mixed blocks to stream subscribers (bounded queues:
a slow subscriber skips blocks, it never slows the engine), and render file chunks into
``<data-dir>/renders``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from backend import diskspace
from backend.audio.models import check_params
from backend.audio.spec import DriverLocation, TaskSpec, media_hashes
from backend.errors import RequestRefused
from backend.hub.component import Component
from backend.hub.events import EventLog
from backend.hub.health import Health
from backend.hub.media import MediaStore, missing_media, spec_media
from backend.hub.registry import Registry
from backend.hub.tasks.farm_plan import PlanError
from backend.hub.tasks.state import Conflict, Render, RenderState, Task, TaskState, apply, require
from backend.protocol import Message, frames
from backend.protocol.tasks import (
    InsertEndpoint,
    InsertLink,
    InstanceParams,
    InstancesReport,
    Meters,
    PlayStart,
    PlayState,
    PlayStop,
    RenderCancel,
    RenderEnded,
    RenderProgress,
    RenderStart,
    TaskAccepted,
    TaskDrop,
    TaskDropped,
    TaskRefused,
    TaskSpecPush,
)
from backend.store import Store

if TYPE_CHECKING:
    from backend.hub.tasks.farm import FarmRenders

log = logging.getLogger(__name__)

STREAM_QUEUE = 64
#: How fast an engine is assumed to fetch media from the hub before it answers a pushed
#: spec that names some (bytes per second): conservative for a studio LAN (100 MB/s on
#: gigabit) and a loopback engine, so a big first fetch is not refused as a timeout.
MEDIA_FETCH_BYTES_PER_S = 20_000_000


class TaskError(RequestRefused):
    """A request the hub cannot carry out; ``status`` is the HTTP status to answer with."""


@dataclass
class _Upload:
    path: Path
    handle: BinaryIO
    written: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    #: Why the upload stopped: the hub's disk filled (the render fails with it).
    full: str | None = None


class TaskService:
    def __init__(
        self,
        registry: Registry,
        store: Store,
        events: EventLog,
        data_dir: Path,
        push_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        media: MediaStore | None = None,
    ) -> None:
        self.registry = registry
        self.media = media
        self._store = store
        self._events = events
        self.renders_dir = data_dir / "renders"
        self.push_timeout_s = push_timeout_s
        self._clock = clock
        self.tasks: dict[str, Task] = {}
        self.meters: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self._acks: dict[tuple[str, str], asyncio.Future[str | None]] = {}
        self._subscribers: dict[str, set[asyncio.Queue[bytes | str | None]]] = {}
        self._uploads: dict[tuple[str, str], _Upload] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._links: dict[str, InsertLink] = {}  # driver -> its direct insert link
        #: Renders split over runners (``farm.py``), when the hub runs jobs too.
        self.farm: FarmRenders | None = None
        d = registry.dispatch
        d.on("task.accepted", self._on_ack)
        d.on("task.refused", self._on_ack)
        d.on("task.dropped", self._on_dropped)
        d.on("play.state", self._on_play_state)
        d.on("meters", self._on_meters)
        d.on("render.progress", self._on_render_progress)
        d.on("render.ended", self._on_render_ended)
        d.on("instances", self._on_instances)
        d.on("insert.endpoint", self._on_insert_endpoint)
        d.on_binary(self._on_binary)
        d.on_state(self._on_component_state)

    # -- start-up and shut-down -------------------------------------------------------

    async def load(self) -> None:
        """Fold every stored task; plays and renders cut short by a hub stop are failed."""
        self.renders_dir.mkdir(parents=True, exist_ok=True)
        rows = await self._store.query(
            "SELECT task_id, ts, type, data FROM task_events ORDER BY id")
        for row in rows:
            event = {"type": row["type"], "ts": row["ts"], **json.loads(row["data"])}
            self.tasks[row["task_id"]] = apply(self.tasks.get(row["task_id"]), event)
        for task in list(self.tasks.values()):
            if task.state is TaskState.PLAYING:
                await self.record(task.id, "play_failed", reason="the hub restarted")
            render = task.active_render
            if render is not None:
                await self.record(task.id, "render_failed", render_id=render.render_id,
                                   reason="the hub restarted", task_failed=False)
            if task.state is not TaskState.RELEASED:
                for name in task.components:  # wait for each to register and accept again
                    await self.record(task.id, "resync", component=name)
        self._discard_leftovers()

    def _discard_leftovers(self) -> None:
        """Remove every file of the render store that no ``done`` render owns.

        A render's file arrives as ``<render_id>.part`` and is renamed ``.wav`` just before
        ``render_done`` is committed: a hub killed while a file arrived, or between the
        rename and the commit, left one behind, for a render just failed with "the hub
        restarted". Nothing else writes here.
        """
        owned = {(task.id, render.file) for task in self.tasks.values()
                 for render in task.renders.values()
                 if render.state is RenderState.DONE and render.file}
        for path in self.renders_dir.glob("*/*"):
            if path.is_file() and (path.parent.name, path.name) not in owned:
                log.info("removing %s, the file of a render the hub did not finish", path)
                path.unlink(missing_ok=True)

    async def shutdown(self) -> None:
        for job in list(self._background):
            job.cancel()
        for upload in self._uploads.values():
            upload.handle.close()
            upload.path.unlink(missing_ok=True)
        for queues in self._subscribers.values():
            for queue in queues:
                _offer(queue, None)

    # -- commands (the HTTP API) ------------------------------------------------------

    def get(self, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            raise TaskError(404, f"no task {task_id!r}; GET /api/v1/tasks lists them")
        return task

    async def reserve(self, spec: TaskSpec, engine: str | None) -> Task:
        hashes = media_hashes(spec)
        if hashes and self.media is not None and (why := missing_media(
                self.media.has, spec.model_dump(mode="json"))) is not None:
            raise TaskError(422, why)
        engine_name = self._pick_engine(engine)
        drivers: dict[str, list[str]] = {}
        for iid, instance in spec.instances.items():
            if isinstance(instance.location, DriverLocation):
                self._check_fixed(iid, instance.model, instance.location.driver)
                drivers.setdefault(instance.location.driver, []).append(iid)
        start, end = spec.window.start.timestamp(), spec.window.end.timestamp()
        for other in self.tasks.values():
            if other.state is TaskState.RELEASED:
                continue
            window = other.spec["window"]
            o_start, o_end = _ts(window["start"]), _ts(window["end"])
            if not (start < o_end and o_start < end):
                continue
            for driver, iids in drivers.items():
                shared = set(iids) & set(other.drivers.get(driver, []))
                if shared:
                    raise TaskError(
                        409, f"instance {sorted(shared)[0]!r} on {driver} is already reserved "
                        f"by task {other.id} from {window['start']} to {window['end']}")
        task_id = "t_" + secrets.token_hex(6)
        spec_json = spec.model_dump(mode="json")
        with self.media.claim(hashes) if self.media is not None else contextlib.nullcontext():
            await self.record(task_id, "reserved", spec=spec_json, engine=engine_name,
                              drivers=drivers)
        task = self.tasks[task_id]
        self.spawn(self._push(task, task.components))
        return task

    def media_users(self) -> dict[str, list[str]]:
        """Media hash -> the ids of the tasks not released whose spec names it, oldest
        first: what a media file may not be deleted under."""
        users: dict[str, list[str]] = {}
        for task in sorted(self.tasks.values(), key=lambda t: t.created_at):
            if task.state is not TaskState.RELEASED:
                for sha256 in spec_media(task.spec):
                    users.setdefault(sha256, []).append(task.id)
        return users

    def _pick_engine(self, wanted: str | None) -> str:
        engines = [c for c in self.registry.components.values() if c.kind == "engine"]
        if wanted is not None:
            component = self.registry.components.get(wanted)
            if component is None or component.kind != "engine":
                raise TaskError(422, f"engine: no engine named {wanted!r} is registered")
            if component.state is not Health.UP:
                raise TaskError(409, f"engine {wanted} is {component.state.value}, not up")
            return wanted
        up = [c for c in engines if c.state is Health.UP]
        if not up:
            raise TaskError(409, "no engine is up: start one with `controlroom agent engine`")
        busy = {name: 0 for name in (c.id for c in up)}
        for task in self.tasks.values():
            if task.state is not TaskState.RELEASED and task.engine in busy:
                busy[task.engine] += 1
        return min(busy, key=lambda name: (busy[name], name))

    def _check_fixed(self, iid: str, model: str, driver: str) -> None:
        component = self.registry.components.get(driver)
        where = f"instances.{iid}.location.driver"
        if component is None or component.kind != "driver":
            raise TaskError(422, f"{where}: no instance driver named {driver!r} is registered")
        declared = {i.get("id"): i for i in component.config.get("instances", [])
                    if isinstance(i, dict)}
        if iid not in declared:
            raise TaskError(
                422, f"instances.{iid}: {driver} has no instance {iid!r}; it hosts "
                f"{', '.join(sorted(map(str, declared))) or 'none'}")
        if declared[iid].get("model") != model:
            raise TaskError(
                422, f"instances.{iid}.model: {driver}'s {iid} is a {declared[iid].get('model')}, "
                f"not a {model}")
        if component.state is not Health.UP:
            raise TaskError(409, f"instance driver {driver} is {component.state.value}, not up")

    async def play(self, task_id: str) -> Task:
        task = self.get(task_id)
        self._require(task, "play")
        await self.record(task_id, "play")
        if not await self.send(task.engine, PlayStart(task_id=task_id,
                                                       inserts=self.inserts(task))):
            await self.record(task_id, "play_failed", reason=f"{task.engine} is not connected")
        return task

    async def stop(self, task_id: str) -> Task:
        task = self.get(task_id)
        self._require(task, "stop")
        # Stopped first: what the engine says about this play from now on (a chain through
        # a driver failing because the play was stopped, say) must not turn it into a failure.
        await self.record(task_id, "stopped")
        await self.send(task.engine, PlayStop(task_id=task_id))
        return task

    async def render(self, task_id: str, fmt: str, segment: list[float] | None,
                     farm: int | list[str] | None = None) -> Render:
        """Render with the task's engine, or split over ``farm`` runners (a count or
        names) and the engine."""
        task = self.get(task_id)
        self._require(task, "render")
        render_id = "r_" + secrets.token_hex(6)
        if farm is not None:
            if self.farm is None:
                raise TaskError(409, "this hub runs no jobs, so it has no render farm")
            try:
                return await self.farm.start(task, render_id, fmt, segment, farm)
            except PlanError as exc:
                raise TaskError(409, f"cannot render task {task_id} on the farm: {exc}") \
                    from None
        await self.record(task_id, "render", render_id=render_id, format=fmt, segment=segment)
        sent = await self.send(task.engine, RenderStart(
            task_id=task_id, render_id=render_id, format=fmt,  # type: ignore[arg-type]
            segment=segment, inserts=self.inserts(task)))
        if not sent:
            await self.record(task_id, "render_failed", render_id=render_id,
                               reason=f"{task.engine} is not connected", task_failed=False)
        return task.renders[render_id]

    async def cancel_render(self, task_id: str, render_id: str,
                            reason: str = "cancelled by the operator") -> Render:
        task = self.get(task_id)
        render = task.renders.get(render_id)
        if render is None:
            raise TaskError(404, f"task {task_id} has no render {render_id!r}")
        if render.state is not RenderState.RUNNING:
            raise TaskError(409, f"render {render_id} is {render.state.value}, not running")
        self._require(task, "render_cancel")
        if render.farm is not None and self.farm is not None:
            await self.farm.cancel(task, render, reason)
            return render
        await self.send(task.engine, RenderCancel(task_id=task_id, render_id=render_id,
                                                   reason=reason))
        self.discard_upload(task_id, render_id)
        await self.record(task_id, "render_cancelled", render_id=render_id, reason=reason)
        return render

    async def release(self, task_id: str) -> Task:
        task = self.get(task_id)
        self._require(task, "release")
        if task.state is TaskState.PLAYING:
            await self.send(task.engine, PlayStop(task_id=task_id, reason="released"))
            await self.record(task_id, "stopped")
        render = task.active_render
        if render is not None:
            await self.cancel_render(task_id, render.render_id, "the task was released")
        await self.record(task_id, "released")
        for name in task.components:
            await self.send(name, TaskDrop(task_id=task_id))
        return task

    async def set_params(self, task_id: str, iid: str, params: dict[str, Any]) -> dict[str, Any]:
        task = self.get(task_id)
        instance = task.spec["instances"].get(iid)
        if instance is None:
            raise TaskError(404, f"task {task_id} has no instance {iid!r}")
        self._require(task, "patch")
        merged = {**instance["params"], **params}
        try:
            checked = check_params(instance["model"], merged)
        except ValueError as exc:
            raise TaskError(422, f"instances.{iid}.params: {exc}") from None
        location = instance.get("location")
        target = location["driver"] if isinstance(location, dict) else task.engine
        await self.record(task_id, "params", instance_id=iid, params=checked)
        await self.send(target, InstanceParams(task_id=task_id, instance_id=iid, params=checked))
        return checked

    def _require(self, task: Task, command: str) -> None:
        try:
            require(task, command)
        except Conflict as exc:
            raise TaskError(409, str(exc)) from None

    # -- audio stream subscribers -----------------------------------------------------

    def subscribe(self, task_id: str) -> asyncio.Queue[bytes | str | None]:
        self.get(task_id)
        queue: asyncio.Queue[bytes | str | None] = asyncio.Queue(STREAM_QUEUE)
        self._subscribers.setdefault(task_id, set()).add(queue)
        return queue

    def unsubscribe(self, task_id: str, queue: asyncio.Queue[bytes | str | None]) -> None:
        self._subscribers.get(task_id, set()).discard(queue)

    def _fan_out(self, task_id: str, item: bytes | str) -> None:
        for queue in self._subscribers.get(task_id, ()):
            _offer(queue, item)

    def render_path(self, task_id: str, render_id: str) -> Path:
        task = self.get(task_id)
        render = task.renders.get(render_id)
        if render is None:
            raise TaskError(404, f"task {task_id} has no render {render_id!r}")
        if render.state is not RenderState.DONE or render.file is None:
            raise TaskError(409, f"render {render_id} is {render.state.value}; no file yet")
        return self.renders_dir / task_id / render.file

    # -- what agents report -----------------------------------------------------------

    async def _on_ack(self, component: Component, message: Message) -> None:
        assert isinstance(message, TaskAccepted | TaskRefused)
        future = self._acks.get((message.task_id, component.id))
        if future is not None and not future.done():
            future.set_result(None if isinstance(message, TaskAccepted) else message.reason)

    async def _on_dropped(self, component: Component, message: Message) -> None:
        assert isinstance(message, TaskDropped)
        log.info("%s dropped the spec of %s", component.id, message.task_id)
        await self._events.append("task.dropped", message.task_id, {"component": component.id})

    async def _on_play_state(self, component: Component, message: Message) -> None:
        assert isinstance(message, PlayState)
        task = self._task_of(component, message.task_id)
        if task is None or task.state is not TaskState.PLAYING:
            return
        if message.state == "failed":
            await self._fail_play(task, message.reason or "the engine stopped", component.id)
        elif message.state == "stopped":
            await self.record(task.id, "stopped", reason=message.reason)

    async def _on_meters(self, component: Component, message: Message) -> None:
        assert isinstance(message, Meters)
        if self._task_of(component, message.task_id) is None:
            return
        reading = message.model_dump(exclude={"type"})
        self.meters[message.task_id] = reading
        self._fan_out(message.task_id, json.dumps({"type": "meters", **reading}))

    async def _on_render_progress(self, component: Component, message: Message) -> None:
        assert isinstance(message, RenderProgress)
        task = self._task_of(component, message.task_id)
        render = task.renders.get(message.render_id) if task else None
        if task is None or render is None or render.state is not RenderState.RUNNING:
            return
        if render.farm is not None and self.farm is not None:
            await self.farm.engine_progress(task, render, message.part, message.progress)
            return
        await self.record(task.id, "render_progress", render_id=message.render_id,
                           progress=message.progress)

    async def _on_render_ended(self, component: Component, message: Message) -> None:
        assert isinstance(message, RenderEnded)
        task = self._task_of(component, message.task_id)
        render = task.renders.get(message.render_id) if task else None
        if task is None or render is None or render.state is not RenderState.RUNNING:
            self.discard_upload(message.task_id, message.render_id)
            return
        state, reason = message.state, message.reason or message.state
        received = None
        if state == "done":
            received, problem = self._received(task.id, render.render_id, message)
            if problem is not None:
                state, reason = "failed", problem
        else:
            self.discard_upload(task.id, render.render_id)
        if render.farm is not None and self.farm is not None:  # a farm part's streams
            await self.farm.engine_ended(task, render, message.part, state, reason, received)
        elif received is not None:
            final = received.with_suffix(".wav")
            received.replace(final)
            await self.record(task.id, "render_done", render_id=render.render_id,
                              file=final.name, bytes=final.stat().st_size)
        else:
            kind = "render_cancelled" if state == "cancelled" else "render_failed"
            await self.record(task.id, kind, render_id=render.render_id, reason=reason,
                              task_failed=False)

    def _received(self, task_id: str, render_id: str,
                  ended: RenderEnded) -> tuple[Path | None, str | None]:
        """The file the engine sent for a render it says is done, closed and checked
        against its length and SHA-256; or why there is none (a damaged one is deleted)."""
        upload = self._uploads.pop((task_id, render_id), None)
        if upload is None:
            return None, "the engine sent no file"
        upload.handle.close()
        problem = upload.full
        if problem is None and (upload.written != ended.bytes
                                or upload.digest.hexdigest() != ended.sha256):
            problem = (f"file arrived damaged ({upload.written} of {ended.bytes} bytes, "
                       "checksum mismatch)")
        if problem is not None:
            upload.path.unlink(missing_ok=True)
            return None, problem
        return upload.path, None

    async def _on_instances(self, component: Component, message: Message) -> None:
        assert isinstance(message, InstancesReport)
        component.report = {"at": self._clock(), "instances": message.instances}

    async def _on_insert_endpoint(self, component: Component, message: Message) -> None:
        assert isinstance(message, InsertEndpoint)
        if component.kind == "driver":
            self._links[component.id] = message.link

    def inserts(self, task: Task) -> dict[str, InsertLink]:
        """The direct links of the task's drivers that have one and that the engine can
        reach (the rest: relayed). A link on loopback is only offered to an engine on the
        driver's machine: elsewhere the address means another machine's loopback, where
        some other program might be listening on that port."""
        engine_host = _peer_host(self.registry.components.get(task.engine))
        offered = {}
        for name in task.drivers:
            link = self._links.get(name)
            driver_host = _peer_host(self.registry.components.get(name))
            if link is not None and reachable(link.host, engine_host, driver_host):
                offered[name] = link
        return offered

    async def _on_binary(self, component: Component, frame: bytes) -> None:
        header, payload = frames.unpack(frame)
        kind = header["k"]
        task = self.tasks.get(str(header.get("task")))
        if task is None or task.state is TaskState.RELEASED:
            return  # a late frame of a released task
        if kind == "audio" and component.id == task.engine:
            self._fan_out(task.id, frame)
        elif kind == "insert" and component.id == task.engine:
            driver = str(header.get("driver"))
            if driver in task.drivers:
                await self._forward(driver, frame)
        elif kind == "insert_result" and component.id in task.drivers:
            await self._forward(task.engine, frame)
        elif kind == "file" and component.id == task.engine:
            self._write_chunk(task.id, str(header.get("render")), int(header.get("offset", -1)),
                              payload)

    async def _on_component_state(self, component: Component, state: Health,
                                  reason: str) -> None:
        if component.kind not in ("engine", "driver"):
            return
        if state is Health.DOWN:
            self._links.pop(component.id, None)  # a new process brings a new link and key
        for task in list(self.tasks.values()):
            if task.state is TaskState.RELEASED or component.id not in task.components:
                continue
            if state is Health.DOWN:
                if task.state is TaskState.PLAYING:
                    await self._fail_play(task, f"{component.id} went down: {reason}",
                                          component.id)
                render = task.active_render
                if render is not None:
                    if render.farm is not None and self.farm is not None:
                        await self.farm.stop_parts(task, render,
                                                   f"{component.id} went down")
                    elif component.id != task.engine:
                        await self.send(task.engine, RenderCancel(
                            task_id=task.id, render_id=render.render_id,
                            reason=f"{component.id} went down"))
                    self.discard_upload(task.id, render.render_id)
                    await self.record(task.id, "render_failed", render_id=render.render_id,
                                       reason=f"{component.id} went down: {reason}",
                                       task_failed=True)
                await self.record(task.id, "component_down", component=component.id,
                                   reason=reason)
            elif state is Health.HALF_OPEN and reason == "registered":
                await self.record(task.id, "resync", component=component.id)
                self.spawn(self._push(task, [component.id]))

    # -- helpers ----------------------------------------------------------------------

    async def _fail_play(self, task: Task, reason: str, culprit: str) -> None:
        if culprit != task.engine:  # stop the rest of the chain
            await self.send(task.engine, PlayStop(task_id=task.id, reason=reason))
        await self.record(task.id, "play_failed", reason=reason)
        self._fan_out(task.id, json.dumps({"type": "play_failed", "reason": reason}))

    async def _push(self, task: Task, names: list[str]) -> None:
        """Send the spec; each component accepts, refuses, or times out."""

        async def one(name: str) -> None:
            future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            self._acks[(task.id, name)] = future
            try:
                instances = task.drivers.get(name, [])
                sent = await self.send(name, TaskSpecPush(task_id=task.id, spec=task.spec,
                                                           instances=instances))
                if not sent:
                    reason: str | None = "is not connected"
                else:
                    wait_s, why = self._push_wait(task, name)
                    try:
                        reason = await asyncio.wait_for(future, wait_s)
                    except TimeoutError:
                        reason = f"did not answer within {wait_s:g} s{why}"
            finally:
                self._acks.pop((task.id, name), None)
            if task.state is TaskState.RELEASED:
                return
            if reason is None:
                await self.record(task.id, "accepted", component=name)
            else:
                await self.record(task.id, "refused", component=name, reason=reason)

        await asyncio.gather(*(one(name) for name in names))

    def _push_wait(self, task: Task, name: str) -> tuple[float, str]:
        """How long ``name`` has to answer the spec, and why when longer than the push
        timeout: the engine fetches the spec's media before it answers, so it gets the time
        that takes at :data:`MEDIA_FETCH_BYTES_PER_S` on top (drivers fetch nothing)."""
        if name != task.engine or self.media is None:
            return self.push_timeout_s, ""
        total = sum(self.media.size(sha256) for sha256 in spec_media(task.spec))
        if total == 0:
            return self.push_timeout_s, ""
        extra = total / MEDIA_FETCH_BYTES_PER_S
        return self.push_timeout_s + extra, (
            f" ({self.push_timeout_s:g} s, plus {extra:.3g} s to fetch {total} bytes of media "
            f"at {MEDIA_FETCH_BYTES_PER_S // 1_000_000} MB/s)")

    async def send(self, name: str, message: Message) -> bool:
        component = self.registry.components.get(name)
        if component is None or component.link is None:
            return False
        await component.link.send(message)
        return True

    async def _forward(self, name: str, frame: bytes) -> None:
        component = self.registry.components.get(name)
        if component is not None and component.link is not None:
            await component.link.send_bytes(frame)

    def _task_of(self, component: Component, task_id: str) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None or component.id not in task.components:
            return None
        return task

    def _write_chunk(self, task_id: str, render_id: str, offset: int,
                     payload: memoryview) -> None:
        task = self.tasks[task_id]
        render = task.renders.get(render_id)
        if render is None or render.state is not RenderState.RUNNING:
            return
        key = (task_id, render_id)
        upload = self._uploads.get(key)
        try:
            with diskspace.guard("the hub's data dir", self.renders_dir):
                if upload is None:
                    path = self.renders_dir / task_id / f"{render_id}.part"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    upload = self._uploads[key] = _Upload(path, path.open("wb"))
                if upload.full is not None:
                    return
                if offset != upload.written:
                    log.warning("render %s chunk at %d, expected %d; ignored", render_id,
                                offset, upload.written)
                    return
                upload.handle.write(payload)
                upload.handle.flush()  # a full disk shows here, not at close
        except diskspace.StorageFull as exc:
            # The render fails with this reason when the engine says it is done; the
            # partial file goes now, so the room it took is given back at once.
            log.warning("render %s of %s: %s", render_id, task_id, exc.message)
            path = self.renders_dir / task_id / f"{render_id}.part"
            if upload is not None:
                upload.handle.close()
            upload = self._uploads[key] = _Upload(path, io.BytesIO(), full=exc.message)
            path.unlink(missing_ok=True)
            return
        upload.digest.update(payload)
        upload.written += len(payload)

    def discard_upload(self, task_id: str, render_id: str) -> None:
        upload = self._uploads.pop((task_id, render_id), None)
        if upload is not None:
            upload.handle.close()
            upload.path.unlink(missing_ok=True)

    async def record(self, task_id: str, kind: str, **data: Any) -> None:
        """Persist an event, fold it, announce it; in one order for everyone."""
        async with self._lock:
            if kind in _RENDER_TICKS and not _running(self.tasks.get(task_id),
                                                      data["render_id"]):
                return  # a late tick of a render that has ended: its history is closed
            ts = self._clock()
            payload = {"task_id": task_id, **data} if kind == "reserved" else data
            task = apply(self.tasks.get(task_id), {"type": kind, "ts": ts, **payload})
            # The task's event and the hub's event in one transaction (see jobs' _record).
            await self._events.append(
                f"task.{kind}", task_id, {"state": task.state.value, "error": task.error,
                                          **data},
                along=[("INSERT INTO task_events (task_id, ts, type, data) VALUES "
                        "(?, ?, ?, ?)", (task_id, ts, kind, json.dumps(payload)))])
            self.tasks[task_id] = task
        if kind != "render_progress" or data.get("progress", 0) in (0.0, 1.0):
            log.info("task %s: %s %s", task_id, kind, _brief(data))

    def spawn(self, coro: Any) -> None:
        job: asyncio.Task[None] = asyncio.create_task(coro)
        self._background.add(job)
        job.add_done_callback(self._background.discard)


#: Events about a running render: recorded only while it runs.
_RENDER_TICKS = frozenset({"render_progress", "render_part", "render_assembly",
                           "render_reassigned"})


def _running(task: Task | None, render_id: str) -> bool:
    render = task.renders.get(render_id) if task is not None else None
    return render is not None and render.state is RenderState.RUNNING


def _peer_host(component: Component | None) -> str | None:
    link = component.link if component is not None else None
    return getattr(link, "peer_host", None)


def reachable(link_host: str, engine_host: str | None, driver_host: str | None) -> bool:
    """Whether an engine can be told to use a driver's insert link at ``link_host``, given
    where the hub sees each connect from: anything but loopback, and loopback only when
    both are on one machine."""
    try:
        loopback = ipaddress.ip_address(link_host).is_loopback
    except ValueError:
        loopback = link_host == "localhost"
    return not loopback or engine_host == driver_host


def _offer(queue: asyncio.Queue[bytes | str | None], item: bytes | str | None) -> None:
    """Put without waiting; a full queue loses its oldest item instead (skip, never block)."""
    with contextlib.suppress(asyncio.QueueFull):
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(item)


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def _brief(data: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items() if k not in ("spec",))[:200]
