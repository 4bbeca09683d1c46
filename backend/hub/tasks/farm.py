"""Farm renders on the hub: one render split over runners' jobs and the engine, summed here.

A farm render is a task render (``POST /tasks/{id}/render`` with ``"farm"``) whose mix is
cut along its summation tree's chunks (``backend/audio/graph.py`` ``mix_layout``). The
plan (:mod:`backend.hub.tasks.farm_plan`) gives each part whole chunks: a runner's part is
a ``render`` job pinned to it (label ``runner.<name>``, one CPU), which uploads one float64
stream per chunk as job artifacts; the engine's part is a ``render.start`` with ``chunks``,
whose streams come back over the engine's channel as one file. When every chunk has a
stream, the hub sums them in chunk order into the WAV (:func:`backend.audio.farm.assemble`)
off the event loop: the file is bit-identical to the engine's own render.

What can go wrong, and what happens:

- A runner that goes down, refuses its part, cannot place it (no room) or loses it: its
  chunks go to a new part, on a spare runner when the farm was asked for by count, else on
  the engine (which renders one part at a time: a second engine part waits for the first).
  The lost part stays in the render's record with the reason.
- A part that fails (its program exits non-zero) fails the render: the same spec would
  fail anywhere, and the operator needs the reason, not a retry loop.
- Cancel (or a failure, or the engine going down) cancels every part's job, tells the
  engine, stops the assembly and deletes every chunk stream and the partial WAV.
- A hub restart fails the render (as any render); :meth:`FarmRenders.recover` then cancels
  the parts' jobs that still run and deletes what they left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Protocol

from backend import diskspace
from backend.audio.farm import Slice, assemble, chunk_file, concatenated
from backend.audio.graph import mix_layout
from backend.hub.component import Component
from backend.hub.health import Health
from backend.hub.jobs.service import JobError, JobService
from backend.hub.jobs.state import FINAL, Job, JobState
from backend.hub.registry import Registry
from backend.hub.tasks import farm_plan
from backend.hub.tasks.state import Render, RenderState, Task
from backend.protocol import Message
from backend.protocol.tasks import InsertLink, RenderCancel, RenderStart

log = logging.getLogger(__name__)

#: What a runner's part asks of it: one core (a part renders in one process).
PART_NEEDS: dict[str, Any] = {"cpus": 1}
#: The share of a farm render's progress that is the hub's final sum.
ASSEMBLY_SHARE = 0.05
#: Progress steps worth an event (each is a row in the task's history).
STEP = 0.05
#: Frames per block of the assembly (any size gives the same file: the sum is per sample).
ASSEMBLY_FRAMES = 8192
ENGINE = farm_plan.ENGINE


class TaskHost(Protocol):
    """What the farm needs of the task service (``service.py``), which owns the tasks,
    their event history and the engine's channel; named here so the farm does not import
    the service that calls it."""

    registry: Registry
    renders_dir: Path
    tasks: dict[str, Task]

    async def record(self, task_id: str, kind: str, **data: Any) -> None: ...

    async def send(self, name: str, message: Message) -> bool: ...

    def inserts(self, task: Task) -> dict[str, InsertLink]: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...

    def discard_upload(self, task_id: str, render_id: str) -> None: ...


class FarmRenders:
    def __init__(self, tasks: TaskHost, jobs: JobService) -> None:
        self.tasks = tasks
        self.jobs = jobs
        self._assembling: dict[str, threading.Event] = {}
        jobs.watchers.append(self._on_job)
        tasks.registry.dispatch.on_state(self._on_component_state)

    # -- starting -----------------------------------------------------------------------

    async def start(self, task: Task, render_id: str, fmt: str, segment: list[float] | None,
                    runners: int | list[str]) -> Render:
        """Plan the render and start its parts; :class:`farm_plan.PlanError` when no runner
        can take a part (the caller's 409)."""
        count = len(mix_layout(len(task.spec["tracks"]))[1])
        candidates = [farm_plan.Candidate(name, up, why)
                      for name, up, why in self.jobs.candidates(PART_NEEDS)]
        plan = farm_plan.plan(count, engine_chunks(task.spec), candidates, runners)
        await self.tasks.record(task.id, "render", render_id=render_id, format=fmt,
                                segment=segment, farm={
                                    "asked": runners, "chunks": count,
                                    "skipped": dict(plan.skipped),
                                    "parts": [{"name": p.name, "chunks": list(p.chunks)}
                                              for p in plan.parts]})
        render = task.renders[render_id]
        for index in range(len(plan.parts)):
            await self._start_part(task, render, index)
        return render

    async def _start_part(self, task: Task, render: Render, index: int) -> None:
        farm = _farm(render)
        part = farm["parts"][index]
        if part["name"] == ENGINE:
            if any(p["name"] == ENGINE and p["state"] == "running" for p in farm["parts"]):
                return  # the engine renders one part at a time: this one follows
            sent = await self.tasks.send(task.engine, RenderStart(
                task_id=task.id, render_id=render.render_id,
                format=render.format,  # type: ignore[arg-type]
                segment=render.segment, inserts=self.tasks.inserts(task),
                chunks=part["chunks"], part=index))
            if not sent:
                await self.fail(task, render, f"{task.engine} is not connected")
                return
            await self._part(task, render, index, state="running")
            return
        name = part["name"]
        try:
            job = await self.jobs.submit(
                "render", {**PART_NEEDS, "labels": [f"runner.{name}"]},
                {"spec": task.spec, "chunks": part["chunks"], "segment": render.segment,
                 "farm": {"task": task.id, "render": render.render_id, "part": index}},
                None)
        except JobError as exc:
            await self._reassign(task, render, index, f"{name} could not be given it: "
                                 f"{exc.message}")
            return
        await self._part(task, render, index, job=job.id)

    # -- what the parts report ----------------------------------------------------------

    async def _on_job(self, job: Job, kind: str) -> None:
        owner = _part_of(job)
        if owner is None:
            return
        task = self.tasks.tasks.get(owner[0])
        render = task.renders.get(owner[1]) if task is not None else None
        if task is None or render is None or render.state is not RenderState.RUNNING \
                or render.farm is None or not 0 <= owner[2] < len(render.farm["parts"]):
            if job.state in FINAL:  # a part of a render that ended: its streams go
                self._remove_artifacts(job)
            return
        index = owner[2]
        part = render.farm["parts"][index]
        if part["state"] not in ("waiting", "running"):
            return
        name = part["name"]
        if job.state is JobState.QUEUED and kind in ("waiting", "refused", "withdrawn"):
            # Pinned to its runner, the job would wait for it: the chunks go elsewhere
            # now (first, so that the cancel's own change finds the part lost).
            await self._reassign(task, render, index, f"{name} cannot take it: {job.reason}")
            await self._cancel_job(job.id, "its chunks went to another part")
        elif job.state is JobState.RUNNING:
            await self._part(task, render, index, state="running", progress=job.progress)
        elif job.state is JobState.SUCCEEDED:
            missing = [c for c in part["chunks"]
                       if not self.jobs.artifact_path(job.id, chunk_file(Path(), c).name)
                       .exists()]
            if missing:
                await self.fail(task, render, f"the part on {name} ended without the "
                                f"stream of chunk {missing[0]}")
                return
            await self._part(task, render, index, state="done", progress=1.0)
            await self._maybe_assemble(task, render)
        elif job.state in (JobState.FAILED, JobState.TIMED_OUT):
            await self._part(task, render, index, state="failed", reason=job.error)
            await self.fail(task, render, f"the part on {name} (job {job.id}) failed: "
                            f"{job.error or job.state.value}")
        elif job.state in (JobState.LOST, JobState.CANCELLED):
            await self._reassign(task, render, index,
                                 f"{name} lost it: {job.error or job.reason or job.state}")

    async def engine_progress(self, task: Task, render: Render, index: int | None,
                              progress: float) -> None:
        part = self._engine_part(render, index)
        if part is not None and part["state"] == "running":
            await self._part(task, render, part["part"], progress=progress)

    async def engine_ended(self, task: Task, render: Render, index: int | None, state: str,
                           reason: str | None, upload: Path | None) -> None:
        """The engine's part ended; ``upload`` is its verified streams when it is done."""
        part = self._engine_part(render, index)
        if part is None or part["state"] != "running":
            _move(upload, None)
            return
        if state != "done" or upload is None:
            await self._part(task, render, part["part"], state="failed", reason=reason)
            await self.fail(task, render, f"the engine's part failed: {reason or state}")
            return
        _move(upload, self._engine_file(task, render, part["part"]))
        await self._part(task, render, part["part"], state="done", progress=1.0)
        following = next((p for p in _farm(render)["parts"]
                          if p["name"] == ENGINE and p["state"] == "waiting"), None)
        if following is not None:
            await self._start_part(task, render, following["part"])
        await self._maybe_assemble(task, render)

    async def _on_component_state(self, component: Component, state: Health,
                                  reason: str) -> None:
        if component.kind != "runner" or state is not Health.DOWN:
            return
        for task in list(self.tasks.tasks.values()):
            render = task.active_render
            if render is None or render.farm is None:
                continue
            for part in list(render.farm["parts"]):
                if part["name"] == component.id and part["state"] in ("waiting", "running"):
                    await self._reassign(task, render, part["part"],
                                         f"{component.id} went down: {reason}")
                    if part["job"] is not None:
                        await self._cancel_job(part["job"], "its chunks went to another part")

    # -- reassigning, failing, cancelling -------------------------------------------------

    async def _reassign(self, task: Task, render: Render, index: int, reason: str) -> None:
        farm = _farm(render)
        busy = {p["name"] for p in farm["parts"] if p["state"] in ("waiting", "running")}
        lost = {p["name"] for p in farm["parts"] if p["state"] == "lost"}
        spare = []
        if isinstance(farm.get("asked"), int):  # by count: any runner will do
            spare = [name for name, up, why in self.jobs.candidates(PART_NEEDS)
                     if up and why is None and name not in lost]
        to = farm_plan.taker(farm["parts"][index]["name"], busy - {farm["parts"][index]["name"]},
                             spare)
        log.info("render %s: the part on %s goes to %s (%s)", render.render_id,
                 farm["parts"][index]["name"], to, reason)
        await self.tasks.record(task.id, "render_reassigned", render_id=render.render_id,
                                part=index, reason=reason, to=to)
        await self._start_part(task, render, len(farm["parts"]) - 1)
        await self._progress(task, render)

    async def fail(self, task: Task, render: Render, reason: str) -> None:
        if render.state is not RenderState.RUNNING:
            return
        await self.stop_parts(task, render, f"the render failed: {reason}")
        await self.tasks.record(task.id, "render_failed", render_id=render.render_id,
                                reason=reason, task_failed=False)

    async def cancel(self, task: Task, render: Render, reason: str) -> None:
        await self.stop_parts(task, render, reason)
        await self.tasks.record(task.id, "render_cancelled", render_id=render.render_id,
                                reason=reason)

    async def stop_parts(self, task: Task, render: Render, reason: str) -> None:
        """Stop every part and the assembly and delete every stream (the render ends)."""
        farm = _farm(render)
        stop = self._assembling.pop(render.render_id, None)
        if stop is not None:
            stop.set()
        for part in farm["parts"]:
            if part["state"] not in ("waiting", "running"):
                continue
            if part["name"] == ENGINE and part["state"] == "running":
                await self.tasks.send(task.engine, RenderCancel(
                    task_id=task.id, render_id=render.render_id, reason=reason))
            elif part["job"] is not None:
                await self._cancel_job(part["job"], reason)
            await self._part(task, render, part["part"], state="cancelled")
        self._remove_streams(task, render)

    async def recover(self) -> None:
        """After a restart (every render that was running has failed): cancel the parts'
        jobs still live and delete the streams the ended ones left."""
        for job in list(self.jobs.jobs.values()):
            if _part_of(job) is None:
                continue
            if job.state in FINAL:
                self._remove_artifacts(job)
            else:  # its streams go when it ends (``_on_job``)
                await self._cancel_job(job.id, "the hub restarted; the render failed")

    # -- the assembly ---------------------------------------------------------------------

    async def _maybe_assemble(self, task: Task, render: Render) -> None:
        farm = _farm(render)
        done = [p for p in farm["parts"] if p["state"] == "done"]
        owner = {c: p for p in done for c in p["chunks"]}
        if len(owner) < farm["chunks"] or render.render_id in self._assembling:
            return
        sources: list[Path | Slice] = []
        for chunk in range(farm["chunks"]):
            part = owner[chunk]
            if part["name"] == ENGINE:
                path = self._engine_file(task, render, part["part"])
                try:
                    slices = concatenated(path, len(part["chunks"]))
                except (OSError, ValueError) as exc:
                    await self.fail(task, render, f"the engine's streams: {exc}")
                    return
                sources.append(slices[sorted(part["chunks"]).index(chunk)])
            else:
                sources.append(self.jobs.artifact_path(part["job"],
                                                       chunk_file(Path(), chunk).name))
        # In the background: this runs inside the handler of the message that completed
        # the last part, and that agent's channel (its health checks among them) waits
        # for its handler; a long render's sum takes seconds.
        stop = self._assembling[render.render_id] = threading.Event()
        self.tasks.spawn(self._assemble(task, render, sources, stop))

    async def _assemble(self, task: Task, render: Render, sources: list[Path | Slice],
                        stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        reported = [0.0]

        def progress(fraction: float) -> None:  # on the assembly's thread
            if fraction - reported[0] >= STEP or fraction >= 1.0:
                reported[0] = fraction
                loop.call_soon_threadsafe(self._spawn_assembly_progress, task, render,
                                          fraction)

        target = self.tasks.renders_dir / task.id / f"{render.render_id}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        sample_rate = int(task.spec.get("sample_rate") or 48000)

        def work() -> str:
            with diskspace.guard("the hub's data dir", target.parent):
                return assemble(sources, target, sample_rate, ASSEMBLY_FRAMES,
                                render.format,  # type: ignore[arg-type]
                                progress, stop).status

        try:
            status = await asyncio.to_thread(work)
        except (OSError, ValueError, diskspace.StorageFull) as exc:
            self._assembling.pop(render.render_id, None)
            message = exc.message if isinstance(exc, diskspace.StorageFull) else str(exc)
            await self.fail(task, render, f"the hub could not sum the parts: {message}")
            return
        if self._assembling.pop(render.render_id, None) is not stop or status != "completed":
            target.unlink(missing_ok=True)  # cancelled meanwhile: the canceller recorded it
            return
        self._remove_streams(task, render)
        await self.tasks.record(task.id, "render_done", render_id=render.render_id,
                                file=target.name, bytes=target.stat().st_size)

    def _spawn_assembly_progress(self, task: Task, render: Render, fraction: float) -> None:
        self.tasks.spawn(self._assembly_progress(task, render, fraction))

    async def _assembly_progress(self, task: Task, render: Render, fraction: float) -> None:
        if render.state is RenderState.RUNNING and render.render_id in self._assembling:
            await self.tasks.record(task.id, "render_assembly", render_id=render.render_id,
                                    progress=round(fraction, 4))
            await self._progress(task, render)

    # -- helpers --------------------------------------------------------------------------

    async def _part(self, task: Task, render: Render, index: int, **change: Any) -> None:
        """Record a part's change when it is worth a row: a new state, job or reason, or
        progress moved by :data:`STEP`."""
        part = _farm(render)["parts"][index]
        step = change.get("progress", part["progress"]) - part["progress"]
        moved = step >= STEP or (step > 0 and change["progress"] >= 1.0)
        changed = {k: v for k, v in change.items() if k != "progress" and part.get(k) != v}
        if moved:
            changed["progress"] = change["progress"]
        if not changed:
            return
        if "state" in changed:
            changed["part_state"] = changed.pop("state")
        await self.tasks.record(task.id, "render_part", render_id=render.render_id,
                                part=index, **changed)
        await self._progress(task, render)

    async def _progress(self, task: Task, render: Render) -> None:
        """The render's progress: the parts' (each weighted by its chunks), then the sum."""
        farm = _farm(render)
        live = [p for p in farm["parts"] if p["state"] in ("waiting", "running", "done")]
        rendered = sum(len(p["chunks"]) * p["progress"] for p in live) / farm["chunks"]
        overall = (1 - ASSEMBLY_SHARE) * rendered + ASSEMBLY_SHARE * farm["assembly"]
        overall = min(overall, 1.0)
        if render.state is RenderState.RUNNING and (
                abs(overall - render.progress) >= STEP / 2
                or (overall == 1.0 and render.progress < 1.0)):
            await self.tasks.record(task.id, "render_progress", render_id=render.render_id,
                                    progress=round(overall, 4))

    def _engine_part(self, render: Render, index: int | None) -> dict[str, Any] | None:
        if render.farm is None or index is None or not 0 <= index < len(render.farm["parts"]):
            return None
        part: dict[str, Any] = render.farm["parts"][index]
        return part if part["name"] == ENGINE else None

    def _engine_file(self, task: Task, render: Render, index: int) -> Path:
        return self.tasks.renders_dir / task.id / f"{render.render_id}-part{index}.f64"

    async def _cancel_job(self, job_id: str, reason: str) -> None:
        with contextlib.suppress(JobError):  # it ended meanwhile
            await self.jobs.cancel(job_id, reason)

    def _remove_streams(self, task: Task, render: Render) -> None:
        for part in _farm(render)["parts"]:
            if part["name"] == ENGINE:
                self._engine_file(task, render, part["part"]).unlink(missing_ok=True)
            elif part["job"] is not None and part["job"] in self.jobs.jobs:
                self._remove_artifacts(self.jobs.jobs[part["job"]])
        self.tasks.discard_upload(task.id, render.render_id)

    def _remove_artifacts(self, job: Job) -> None:
        folder = self.jobs.artifact_path(job.id, "x").parent
        for path in folder.glob("chunk-*.f64"):
            path.unlink(missing_ok=True)


def engine_chunks(spec: dict[str, Any]) -> set[int]:
    """The chunks with a track whose chain goes through an instance driver: the engine's."""
    groups, chunks = mix_layout(len(spec["tracks"]))
    through = {iid for iid, inst in spec["instances"].items()
               if isinstance(inst.get("location"), dict) and "driver" in inst["location"]}
    driven = {row for row, track in enumerate(spec["tracks"])
              if through & set(track.get("chain") or [])}
    return {index for index, chunk in enumerate(chunks)
            if any(row in driven for group in chunk for row in groups[group])}


def _part_of(job: Job) -> tuple[str, str, int] | None:
    """(task id, render id, part index) of a farm part's job, from its payload; None for
    any other job."""
    owner = job.payload.get("farm") if isinstance(job.payload, dict) else None
    if job.kind != "render" or not isinstance(owner, dict):
        return None
    return str(owner.get("task")), str(owner.get("render")), int(owner.get("part") or 0)


def _move(path: Path | None, to: Path | None) -> None:
    """Keep an arrived file under its part's name, or delete it (``to`` None)."""
    if path is not None:
        if to is None:
            path.unlink(missing_ok=True)
        else:
            path.replace(to)


def _farm(render: Render) -> dict[str, Any]:
    assert render.farm is not None
    return render.farm
