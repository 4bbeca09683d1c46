"""The audio engine agent: takes specs, plays them in real time, renders them offline.

Runs inside ``controlroom agent engine``. All DSP happens on worker threads (the graph, the
render loop); the event loop only moves messages and frames, so health checks are answered
on time while a render keeps a core busy.

Media a spec names by hash are fetched from the hub into the engine's media cache
(:mod:`backend.agents.media_cache`) before the task is accepted, and the spec is kept with
their local paths, so every play and render (and the track workers, which build their
graph from that spec) reads the cached files.

Play: one block at a time on the engine's own block clock (block ``k`` is due at
``start + k x block duration``, produced up to :data:`LEAD_BLOCKS` early so listeners have a
buffer), each block sent to the hub as float32 and metered at >= 20 Hz. Render: the same
graph as fast as it goes, to a WAV file in the engine's data dir, progress as it goes,
then the file to the hub in chunks with its SHA-256, then deleted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from backend import diskspace
from backend.agents.hub_http import agent_hub_client
from backend.agents.media_cache import MediaCache, MediaError, limit_bytes
from backend.agents.session import AgentSession
from backend.audio.errors import AudioError
from backend.audio.farm import render_part
from backend.audio.graph import Graph, offline_block
from backend.audio.instance import Instance
from backend.audio.meters import MeterReading
from backend.audio.render import render
from backend.audio.spec import (
    DriverLocation,
    InstanceSpec,
    TaskSpec,
    media_hashes,
    with_media_paths,
)
from backend.audio.workers import TrackWorkers
from backend.diskspace import StorageFull
from backend.engine.inserts import InsertRouter, RemoteInstance
from backend.protocol import Message, frames
from backend.protocol.tasks import (
    InstanceParams,
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

log = logging.getLogger(__name__)

LEAD_BLOCKS = 2
METER_INTERVAL_S = 0.04  # 25 Hz
PROGRESS_INTERVAL_S = 0.2
FILE_CHUNK = 512 * 1024
#: What a full-disk reason calls the engine's renders dir.
ROOM = "the engine's data dir"


@dataclass
class _Run:
    """One play or render of a task: its graph, its thread's stop flag, its insert run id."""

    kind: str
    graph: Graph | None
    run_id: int
    cancel: threading.Event = field(default_factory=threading.Event)
    job: asyncio.Task[None] | None = None
    reason: str = ""


class Engine:
    def __init__(self, session: AgentSession, data_dir: Path) -> None:
        self.session = session
        self.renders_dir = data_dir / "renders"
        self._discard_leftovers()
        self.specs: dict[str, TaskSpec] = {}
        self.runs: dict[str, _Run] = {}
        self.router: InsertRouter | None = None
        self.media = MediaCache.for_agent(data_dir)
        #: Specs whose media are being fetched: the answer to the hub comes when done.
        self.accepting: dict[str, asyncio.Task[None]] = {}
        handlers = {
            "task.spec": self._on_spec, "task.drop": self._on_drop, "task.play": self._on_play,
            "task.stop": self._on_stop, "render.start": self._on_render,
            "render.cancel": self._on_render_cancel, "instance.params": self._on_params,
        }
        session.handlers.update(handlers)
        session.on_binary = self._on_binary

    def _discard_leftovers(self) -> None:
        """Delete what an earlier process of this engine left in its render dir.

        A render's file lives there only while it is written and sent to the hub, and is
        deleted after; one found at start was cut short by a SIGKILL or a crash (the hub
        failed that render when the engine went down), so it is only taking space.
        """
        if not self.renders_dir.is_dir():
            return
        for leftover in self.renders_dir.iterdir():
            log.info("removing %s, left by a render this engine did not finish",
                     leftover.name)
            if leftover.is_dir():  # a farm part's chunk files
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    @property
    def config(self) -> dict[str, Any]:
        return self.session.config

    @property
    def media_dir(self) -> Path:
        return Path(str(self.config.get("media_dir", "."))).expanduser()

    def _router(self) -> InsertRouter:
        if self.router is None:
            timeout = float(self.config.get("insert_timeout_s", 2.0))
            self.router = InsertRouter(asyncio.get_running_loop(), self.session.send_bytes,
                                       timeout, self.session.settings.name)
        return self.router

    # -- reservation ------------------------------------------------------------------

    async def _on_spec(self, message: Message) -> None:
        assert isinstance(message, TaskSpecPush)
        try:
            spec = TaskSpec.model_validate(message.spec)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            await self._refuse(message.task_id, f"invalid spec: {where}: {first['msg']}")
            return
        await self._cancel_accepting(message.task_id)
        if media_hashes(spec):
            # A download may take a while: off the channel's reader, which must go on
            # answering the hub's pings (and may bring this task's drop meanwhile).
            job = asyncio.create_task(self._accept(message.task_id, spec))
            self.accepting[message.task_id] = job
            job.add_done_callback(lambda done: self._accepted(message.task_id, done))
            return
        await self._accept(message.task_id, spec)

    async def _accept(self, task_id: str, spec: TaskSpec) -> None:
        """Fetch the spec's media (pinned while the task is held), dry-run the graph from
        the spec with their local paths, and answer the hub."""
        hashes = media_hashes(spec)
        try:
            if hashes:
                async with agent_hub_client(self.session) as client:
                    paths = await self.media.acquire(task_id, hashes,
                                                     limit_bytes(self.config), client)
                spec = with_media_paths(spec, {sha: str(p) for sha, p in paths.items()})
            await asyncio.to_thread(self._dry_run, spec)
        except (MediaError, AudioError, OSError, ValueError) as exc:
            self.media.unpin(task_id)
            await self._refuse(task_id, str(exc))
            return
        except asyncio.CancelledError:
            self.media.unpin(task_id)
            raise
        self.specs[task_id] = spec
        log.info("accepted task %s (%d tracks)", task_id, len(spec.tracks))
        await self.session.send(TaskAccepted(task_id=task_id))

    def _accepted(self, task_id: str, done: asyncio.Task[None]) -> None:
        if self.accepting.get(task_id) is done:
            del self.accepting[task_id]
        if not done.cancelled() and done.exception() is not None:
            log.error("accepting task %s failed", task_id, exc_info=done.exception())

    async def _cancel_accepting(self, task_id: str) -> None:
        job = self.accepting.pop(task_id, None)
        if job is not None:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job

    def _dry_run(self, spec: TaskSpec) -> None:
        """Open every source and build every dynamic instance, then let go of them."""
        graph = Graph(spec, lambda iid, s: _Placeholder() if _is_fixed(s) else None,
                      media_dir=self.media_dir)
        graph.close()

    async def _refuse(self, task_id: str, reason: str) -> None:
        log.warning("refused task %s: %s", task_id, reason)
        await self.session.send(TaskRefused(task_id=task_id, reason=reason[:500]))

    async def _on_drop(self, message: Message) -> None:
        assert isinstance(message, TaskDrop)
        await self._cancel_accepting(message.task_id)
        await self._end_run(message.task_id, "task released")
        self.specs.pop(message.task_id, None)
        self.media.unpin(message.task_id)
        await self.session.send(TaskDropped(task_id=message.task_id))

    # -- play -------------------------------------------------------------------------

    async def _on_play(self, message: Message) -> None:
        assert isinstance(message, PlayStart)
        task_id = message.task_id
        spec = self.specs.get(task_id)
        if spec is None:
            await self.session.send(PlayState(task_id=task_id, state="failed",
                                              reason="no spec for this task"))
            return
        # The hub allows play only when the task is ready; a run still here is one the hub
        # already ended (a failed driver, a lost connection) that has not unwound yet.
        await self._end_run(task_id, "superseded by a new play")
        self._router().use_links(message.inserts)
        run = self._new_run("play", task_id)
        try:
            run.graph = await asyncio.to_thread(self._graph, task_id, spec, run.run_id)
        except (AudioError, OSError, ValueError) as exc:
            self.runs.pop(task_id, None)
            await self.session.send(PlayState(task_id=task_id, state="failed", reason=str(exc)))
            return
        run.job = asyncio.create_task(self._play(task_id, run))
        await self.session.send(PlayState(task_id=task_id, state="playing"))

    async def _play(self, task_id: str, run: _Run) -> None:
        graph = run.graph
        assert graph is not None
        rate, block_s = graph.sample_rate, graph.block_size / graph.sample_rate
        loop = asyncio.get_running_loop()
        start = loop.time()
        last_meter = -METER_INTERVAL_S
        seq = 0
        state, reason = "stopped", "end of program"
        try:
            while not run.cancel.is_set():
                due = start + (seq - LEAD_BLOCKS) * block_s
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                position = graph.position_frames
                block = await asyncio.to_thread(graph.next_block)
                if block is None or run.cancel.is_set():
                    break
                seq += 1
                header = {"k": "audio", "task": task_id, "seq": seq, "pos": position,
                          "rate": rate, "ch": 2, "dtype": "float32",
                          "t": time.time()}
                await self.session.send_bytes(
                    frames.pack(header, frames.block_bytes(block.astype(np.float32))))
                heard = graph.position_frames / rate  # audio time, so 25 Hz of program
                if heard - last_meter >= METER_INTERVAL_S:
                    last_meter = heard
                    await self._send_meters(task_id, graph)
            if run.cancel.is_set():
                reason = run.reason or "stopped"
        except (AudioError, OSError, ValueError) as exc:
            if run.cancel.is_set():  # e.g. a driver round trip cut short by the stop itself
                state, reason = "stopped", run.reason or "stopped"
            else:
                state, reason = "failed", str(exc)
                log.warning("play of %s failed: %s", task_id, exc)
        finally:
            graph.close()
            self.runs.pop(task_id, None)
        position_s = graph.position_frames / rate
        await self.session.send(PlayState(task_id=task_id, state=state,  # type: ignore[arg-type]
                                          reason=reason, position_s=position_s))

    async def _on_stop(self, message: Message) -> None:
        assert isinstance(message, PlayStop)
        await self._end_run(message.task_id, message.reason)

    async def _send_meters(self, task_id: str, graph: Graph) -> None:
        await self.session.send(Meters(
            task_id=task_id, position_s=graph.position_frames / graph.sample_rate,
            channels=_channels(graph.meters()), reports=graph.reports(), t=time.time()))

    # -- render -----------------------------------------------------------------------

    async def _on_render(self, message: Message) -> None:
        assert isinstance(message, RenderStart)
        task_id, render_id = message.task_id, message.render_id
        spec = self.specs.get(task_id)
        if spec is None:
            await self.session.send(RenderEnded(task_id=task_id, render_id=render_id,
                                                state="failed", reason="no spec for this task",
                                                part=message.part))
            return
        await self._end_run(task_id, "superseded by a new render")
        self._router().use_links(message.inserts)
        run = self._new_run("render", task_id)
        run.job = asyncio.create_task(self._render(task_id, render_id, message, run, spec))

    async def _render(self, task_id: str, render_id: str, request: RenderStart, run: _Run,
                      spec: TaskSpec) -> None:
        loop = asyncio.get_running_loop()
        part = request.part
        chunks = request.chunks
        path = self.renders_dir / f"{task_id}-{render_id}.wav"
        # A farm part writes one file per chunk it owns (``backend/audio/farm.py``).
        part_dir = self.renders_dir / f"{task_id}-{render_id}-part{part}"
        last = {"progress": 0.0, "meters": 0.0}

        def progress(fraction: float) -> None:  # on the render thread
            now = time.monotonic()
            if now - last["progress"] >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                last["progress"] = now
                loop.call_soon_threadsafe(self._spawn_send, RenderProgress(
                    task_id=task_id, render_id=render_id, progress=min(1.0, fraction),
                    part=part))
            # A part's graph is not the mix: its meters would show a fraction of it.
            if chunks is None and run.graph is not None and \
                    now - last["meters"] >= METER_INTERVAL_S:
                last["meters"] = now
                graph = run.graph
                loop.call_soon_threadsafe(self._spawn_send, Meters(
                    task_id=task_id, position_s=graph.position_frames / graph.sample_rate,
                    channels=_channels(graph.meters()), reports=graph.reports(),
                    t=time.time()))

        def work() -> list[Path] | None:
            """The files to send, in order; None when cancelled."""
            # Renders go to the data dir first: refuse at once when it is full, and name
            # it when it fills midway (the partial file is deleted below either way).
            diskspace.check(ROOM, self.renders_dir)
            with diskspace.guard(ROOM, self.renders_dir):
                path.parent.mkdir(parents=True, exist_ok=True)
            # A part renders in this process: its chunks are a share of the mix already.
            processes = 1 if chunks is not None else render_processes(self.config)
            graph = run.graph = self._graph(task_id, spec, run.run_id, processes)
            try:
                segment = tuple(request.segment) if request.segment else None
                with diskspace.guard(ROOM, self.renders_dir):
                    if chunks is not None:
                        done = render_part(graph, chunks, part_dir, progress, run.cancel,
                                           segment)  # type: ignore[arg-type]
                        return None if done.files is None else \
                            [done.files[c] for c in sorted(done.files)]
                    result = render(graph, path, request.format, progress, run.cancel,
                                    segment)  # type: ignore[arg-type]
                return None if result.status == "cancelled" else [path]
            finally:
                graph.close()

        ended: RenderEnded
        try:
            files = await asyncio.to_thread(work)
            if files is None:
                ended = RenderEnded(task_id=task_id, render_id=render_id, state="cancelled",
                                    reason=run.reason or "cancelled", part=part)
            else:
                size, digest = await self._upload(task_id, render_id, files)
                ended = RenderEnded(task_id=task_id, render_id=render_id, state="done",
                                    bytes=size, sha256=digest, part=part)
        except (AudioError, StorageFull, OSError, ValueError) as exc:
            log.warning("render %s of %s failed: %s", render_id, task_id, exc)
            state = "cancelled" if run.cancel.is_set() else "failed"
            ended = RenderEnded(task_id=task_id, render_id=render_id,
                                state=state,  # type: ignore[arg-type]
                                reason=run.reason if run.cancel.is_set() else str(exc),
                                part=part)
        finally:
            path.unlink(missing_ok=True)
            shutil.rmtree(part_dir, ignore_errors=True)
            self.runs.pop(task_id, None)
        await self.session.send(ended)

    async def _upload(self, task_id: str, render_id: str,
                      paths: list[Path]) -> tuple[int, str]:
        """Send ``paths`` to the hub as one file (a farm part's chunks back to back)."""
        digest = hashlib.sha256()
        offset = 0
        for path in paths:
            with path.open("rb") as handle:
                while chunk := await asyncio.to_thread(handle.read, FILE_CHUNK):
                    header = {"k": "file", "task": task_id, "render": render_id,
                              "offset": offset}
                    if not await self.session.send_bytes(frames.pack(header, chunk)):
                        raise OSError("the hub connection dropped while sending the file")
                    digest.update(chunk)
                    offset += len(chunk)
        return offset, digest.hexdigest()

    async def _on_render_cancel(self, message: Message) -> None:
        assert isinstance(message, RenderCancel)
        await self._end_run(message.task_id, message.reason)

    # -- live parameters and inserts --------------------------------------------------

    async def _on_params(self, message: Message) -> None:
        assert isinstance(message, InstanceParams)
        run = self.runs.get(message.task_id)
        spec = self.specs.get(message.task_id)
        if spec is not None and message.instance_id in spec.instances:
            instance = spec.instances[message.instance_id]
            updated = instance.model_copy(update={"params": type(instance.params)(
                **message.params)})
            spec.instances[message.instance_id] = updated  # type: ignore[assignment]
        if run is not None and run.graph is not None:
            try:
                run.graph.set_instance_params(message.instance_id, message.params)
            except (AudioError, ValueError) as exc:
                log.warning("params for %s refused: %s", message.instance_id, exc)

    async def _on_binary(self, frame: bytes) -> None:
        header, payload = frames.unpack(frame)
        if header["k"] == "insert_result":
            self._router().result(header, payload)

    # -- helpers ----------------------------------------------------------------------

    def _new_run(self, kind: str, task_id: str) -> _Run:
        run = _Run(kind, None, self._router().new_run())
        self.runs[task_id] = run
        return run

    def _graph(self, task_id: str, spec: TaskSpec, run_id: int, processes: int = 1) -> Graph:
        router = self.router
        assert router is not None

        def factory(iid: str, inst: InstanceSpec) -> Instance | None:
            if isinstance(inst.location, DriverLocation):
                return RemoteInstance(router, task_id, run_id, inst.location.driver, iid,
                                      inst.params.model_dump(mode="json"))
            return None

        return Graph(spec, factory, media_dir=self.media_dir, processes=processes,
                     workers=TrackWorkers, block_frames=offline_block(spec))

    async def _end_run(self, task_id: str, reason: str) -> None:
        run = self.runs.get(task_id)
        if run is None:
            return
        run.reason = reason
        run.cancel.set()
        if self.router is not None:
            self.router.fail_run(run.run_id, reason)
        if run.job is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(run.job)

    def _spawn_send(self, message: Message) -> None:
        task = asyncio.ensure_future(self.session.send(message))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def connection_lost(self) -> None:
        """Nobody to stream to or deliver a render to: stop everything (the hub knows), and
        close the direct insert links (the hub hands out current ones with the next run)."""
        for task_id in list(self.runs):
            await self._end_run(task_id, "the hub connection was lost")
        if self.router is not None:
            self.router.close()


def render_processes(config: dict[str, Any]) -> int:
    """How many processes a render uses: the config's ``render_processes``, at most one
    per core (more would only take turns on the same cores)."""
    wanted = max(1, int(config.get("render_processes", 2)))
    return min(wanted, os.cpu_count() or 1)


class _Placeholder:
    """Stands in for a fixed instance during the dry run (no driver call)."""

    params: dict[str, Any] = {}

    def process(self, block: Any) -> Any:
        return block

    def set_params(self, params: Any) -> None: ...

    def report(self) -> dict[str, float]:
        return {}

    def reset(self) -> None: ...


def _is_fixed(spec: InstanceSpec) -> bool:
    return isinstance(spec.location, DriverLocation)


def _channels(reading: MeterReading) -> list[dict[str, float]]:
    return [
        {"peak_dbfs": reading.peak_dbfs[i], "rms_dbfs": reading.rms_dbfs[i],
         "peak_hold_dbfs": reading.peak_hold_dbfs[i], "clips": float(reading.clips[i])}
        for i in range(2)
    ]
