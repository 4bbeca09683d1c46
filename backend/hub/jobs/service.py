"""Runner jobs on the hub: submit, place, offer, apply reports once, cancel, lease, logs.

Every change is a ``job_events`` row folded by :mod:`backend.hub.jobs.state`. Placement
offers a queued job to one fitting runner at a time; the job stays bound to that runner
until it refuses, until its next ``ready`` shows the offer never arrived, or until the
lease runs out while it is away (then the job is ``lost``, with the reason). A job is
therefore never offered to a second runner while the first may still run it.

Runner reports carry journal sequence numbers; each is applied once and acknowledged, so
the runner resends what was not acknowledged after any disconnect or hub restart.
Output is copied into ``<data-dir>/jobs/<id>/output.log`` at exact byte offsets;
artifacts arrive over HTTP (``PUT .../artifacts/{name}``, see :mod:`backend.hub.jobs.api`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from backend.errors import RequestRefused
from backend.hub.component import Component
from backend.hub.events import EventLog
from backend.hub.health import Health
from backend.hub.jobs.runners import RunnerBook, RunnerInfo
from backend.hub.jobs.state import FINAL, Conflict, Job, JobState, apply, require
from backend.hub.media import MediaStore, missing_media, spec_media
from backend.hub.registry import Registry
from backend.protocol import Message, closecodes
from backend.protocol.jobs import (
    InventoryRequest,
    JobAck,
    JobCancel,
    JobEvent,
    JobOffer,
    JobOutput,
    JobRefuse,
    RunnerHeartbeat,
    RunnerInventory,
    RunnerLogs,
    RunnerLogsRequest,
    RunnerState,
)
from backend.runner.resources import own_labels, reserve, shortfall
from backend.store import Store

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 300.0
RUNNERS = frozenset({"runner"})
LOGS_TIMEOUT_S = 5.0


class JobError(RequestRefused):
    """A request the hub cannot carry out; ``status`` is the HTTP status to answer with."""


def _capacity(info: RunnerInfo) -> dict[str, float]:
    """What the runner has at all (not what is free now), from its inventory."""
    hw = info.hardware
    if not hw:
        return {"cpus": float("inf"), "memory_mb": float("inf"), "disk_mb": float("inf"),
                "gpus": float("inf")}
    return {"cpus": float(hw.get("cpu", {}).get("threads", 0)),
            "memory_mb": float(hw.get("memory", {}).get("total_mb", 0)),
            "disk_mb": float(hw.get("work_disk", {}).get("total_mb", 0)),
            "gpus": float(len(hw.get("gpus", [])))}


class JobService:
    def __init__(self, registry: Registry, store: Store, events: EventLog, data_dir: Path,
                 lease_s: float = DEFAULT_LEASE_S,
                 clock: Callable[[], float] = time.time,
                 media: MediaStore | None = None) -> None:
        self.registry = registry
        self.media = media
        self._store = store
        self._events = events
        self.jobs_dir = data_dir / "jobs"
        self.lease_s = lease_s
        self._clock = clock
        self.jobs: dict[str, Job] = {}
        self.book = RunnerBook(store)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._leases: dict[str, asyncio.Task[None]] = {}
        self._logs: dict[str, asyncio.Future[str]] = {}
        self._refused_epoch: dict[tuple[str, str], int] = {}
        #: The connection on which each runner last said ``ready``. Offers go only over
        #: that connection, so the job list in a ``ready`` is never older than an offer.
        self._ready_on: dict[str, object] = {}
        #: Ready runners seen down while their connection stayed open.
        self._stalled: set[str] = set()
        self._scheduler: asyncio.Task[None] | None = None
        #: Called with a job and its event's kind after each change (the farm renders
        #: follow their parts).
        self.watchers: list[Callable[[Job, str], Awaitable[None]]] = []
        d = registry.dispatch
        d.on("runner.state", self._on_state)
        d.on("runner.inventory", self._on_inventory)
        d.on("runner.heartbeat", self._on_heartbeat)
        d.on("job.refuse", self._on_refuse)
        d.on("job.event", self._on_event)
        d.on("job.output", self._on_output)
        d.on("runner.logs", self._on_logs)
        d.on_state(self._on_component_state)

    # -- start-up and shut-down -------------------------------------------------------

    async def load(self) -> None:
        """Fold the stored jobs; a runner that holds jobs and is not back has a lease."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        await self.book.load()
        rows = await self._store.query("SELECT job_id, ts, type, data FROM job_events "
                                       "ORDER BY id")
        for row in rows:
            event = {"type": row["type"], "ts": row["ts"], **json.loads(row["data"])}
            self.jobs[row["job_id"]] = apply(self.jobs.get(row["job_id"]), event)
        for name in {j.bound_to for j in self._live() if j.bound_to}:
            assert name is not None
            self._start_lease(name)
        self._scheduler = asyncio.create_task(self._schedule_loop(), name="job-scheduler")

    async def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel()
        for lease in self._leases.values():
            lease.cancel()

    # -- commands (the HTTP API) ------------------------------------------------------

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobError(404, f"no job {job_id!r}; GET /api/v1/jobs lists them")
        return job

    async def submit(self, kind: str, needs: dict[str, Any], payload: Any,
                     timeout_s: float | None) -> Job:
        if kind == "render" and self.media is not None and (why := missing_media(
                self.media.has, payload["spec"], "payload.spec.")) is not None:
            raise JobError(422, why)
        job_id = "j_" + secrets.token_hex(6)
        named = spec_media(payload["spec"]) if kind == "render" else []
        with self.media.claim(named) if self.media is not None else contextlib.nullcontext():
            await self._record(job_id, "submitted", kind=kind, needs=needs, payload=payload,
                               timeout_s=timeout_s)
        self._wake.set()
        return self.jobs[job_id]

    async def cancel(self, job_id: str, reason: str = "cancelled by the operator") -> Job:
        job = self.get(job_id)
        try:
            require(job, "cancel")
        except Conflict as exc:
            raise JobError(409, str(exc)) from None
        if job.state is JobState.QUEUED and job.offered_to is None:
            await self._record(job_id, "cancelled", reason=reason)
            return job
        await self._record(job_id, "cancel_requested", reason=reason)
        if job.bound_to is not None:
            await self._send(job.bound_to, JobCancel(job_id=job_id, reason=reason))
        return job

    def media_users(self) -> dict[str, list[str]]:
        """Media hash -> the render jobs not yet ended whose spec names it (a runner may
        still fetch it): what a media file may not be deleted under, with the tasks'."""
        users: dict[str, list[str]] = {}
        for job in sorted(self.jobs.values(), key=lambda j: j.created_at):
            if job.kind == "render" and job.state not in FINAL and isinstance(job.payload, dict):
                for sha256 in spec_media(job.payload.get("spec") or {}):
                    users.setdefault(sha256, []).append(job.id)
        return users

    def output_path(self, job_id: str) -> Path:
        self.get(job_id)
        return self.jobs_dir / job_id / "output.log"

    def artifact_path(self, job_id: str, name: str) -> Path:
        return self.jobs_dir / job_id / "artifacts" / name

    def runner_view(self, info: RunnerInfo) -> dict[str, Any]:
        component = self.registry.components.get(info.id)
        jobs = sorted(j.id for j in self._live() if j.bound_to == info.id
                      and j.state is not JobState.LOST)
        return {
            "id": info.id, "state": component.state.value if component else "down",
            "phase": info.phase, "labels": info.labels, "hardware": info.hardware,
            "jobs": jobs, "free": info.free, "load": info.load,
            "last_heartbeat": info.last_heartbeat,
            "last_seen": component.last_seen if component else None,
            "connected": bool(component and component.link is not None),
            "revoked": info.revoked_at is not None,
        }

    def candidates(self, needs: dict[str, Any]) -> list[tuple[str, bool, str | None]]:
        """Every runner the hub knows: its name, whether it is ready for jobs, and why
        a job with ``needs`` would not fit it now (None when it would): what a farm
        render plans with."""
        ready = {info.id for info in self._ready_runners()}
        answer = []
        for name, info in sorted(self.book.runners.items()):
            labels = own_labels(name, info.labels)
            why = None if name not in ready else (
                shortfall(needs, _capacity(info), labels, "in all")
                or shortfall(needs, self._free(info), labels))
            answer.append((name, name in ready, why))
        return answer

    def runner(self, name: str) -> RunnerInfo:
        info = self.book.runners.get(name)
        if info is None:
            raise JobError(404, f"no runner {name!r}; GET /api/v1/runners lists them")
        return info

    async def runner_logs(self, name: str, lines: int) -> str:
        self.runner(name)
        request_id = secrets.token_hex(6)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._logs[request_id] = future
        try:
            if not await self._send(name, RunnerLogsRequest(request_id=request_id,
                                                             lines=lines)):
                raise JobError(503, f"runner {name} is not connected; its log is on its "
                               "machine under <data-dir>/logs")
            try:
                return await asyncio.wait_for(future, LOGS_TIMEOUT_S)
            except TimeoutError:
                raise JobError(504, f"runner {name} did not send its log within "
                               f"{LOGS_TIMEOUT_S:g} s") from None
        finally:
            self._logs.pop(request_id, None)

    async def revoke(self, name: str) -> RunnerInfo:
        """Refuse the runner's secret from now on and close its connection."""
        info = self.runner(name)
        now = self._clock()
        await self._store.update(
            "UPDATE agents SET revoked_at = ? WHERE name = ? AND kind = 'runner' "
            "AND revoked_at IS NULL", (now, name))
        info.revoked_at, info.phase = now, "revoked"
        await self.book.save(info)
        await self._events.append("runner.revoked", name, {})
        component = self.registry.components.get(name)
        if component is not None and component.link is not None:
            await component.link.close(closecodes.FORBIDDEN, "agent credentials revoked")
        return info

    async def check_runner_secret(self, job: Job, agent_id: str, secret: str) -> None:
        """The job's runner proves who it is with its channel credentials (for uploads)."""
        try:
            _, name = await self.registry.check_agent(agent_id, secret, RUNNERS)
        except RequestRefused as exc:
            raise JobError(exc.status, exc.message) from None
        if name != job.runner:
            raise JobError(403, f"job {job.id} does not run on {name}")

    # -- placement --------------------------------------------------------------------

    def kick(self) -> None:
        self._wake.set()

    async def _schedule_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), 1.0)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._place_all()
            except Exception:  # a bug here must not stop placement for good
                log.exception("job placement failed")

    def _ready_runners(self) -> list[RunnerInfo]:
        ready = []
        for info in self.book.runners.values():
            component = self.registry.components.get(info.id)
            if (info.phase == "ready" and info.revoked_at is None and component is not None
                    and component.link is not None and component.state is not Health.DOWN
                    and self._ready_on.get(info.id) is component.link):
                ready.append(info)
        return ready

    def _free(self, info: RunnerInfo) -> dict[str, float]:
        """The runner's reported free resources, less jobs bound to it since that report."""
        free = dict(info.free)
        for job in self._live():
            if job.bound_to == info.id and job.id not in info.running and \
                    job.state is not JobState.LOST:
                free = reserve(free, job.needs)
        return free

    async def _place_all(self) -> None:
        runners = self._ready_runners()
        frees = {r.id: self._free(r) for r in runners}
        for job in sorted(self._live(), key=lambda j: j.created_at):
            if job.state is not JobState.QUEUED or job.bound_to is not None:
                continue
            if job.cancel_requested is not None:
                await self._record(job.id, "cancelled", reason=job.cancel_requested)
                continue
            chosen, reasons, busy = None, [], []
            for info in sorted(runners, key=lambda r: -frees[r.id].get("cpus", 0.0)):
                labels = own_labels(info.id, info.labels)
                never = shortfall(job.needs, _capacity(info), labels, "in all")
                if never is not None:
                    reasons.append(f"{info.id} {never}")
                elif self._refused_epoch.get((job.id, info.id)) == info.epoch or \
                        shortfall(job.needs, frees[info.id], labels) is not None:
                    busy.append(info.id)
                else:
                    chosen = info
                    break
            if chosen is None:
                # Reasons that change only when the farm does, not with every job's end.
                if busy:
                    reason = f"waiting for room on {', '.join(sorted(busy))}"
                elif reasons:
                    reason = "no runner fits: " + "; ".join(reasons)
                else:
                    reason = "no runner is ready"
                if job.reason != reason:
                    await self._record(job.id, "waiting", reason=reason)
                continue
            frees[chosen.id] = reserve(frees[chosen.id], job.needs)
            await self._record(job.id, "offered", runner=chosen.id)
            await self._send(chosen.id, JobOffer(job_id=job.id, kind=job.kind,  # type: ignore[arg-type]
                                                 needs=job.needs, payload=job.payload,
                                                 timeout_s=job.timeout_s))

    # -- leases -----------------------------------------------------------------------

    def _start_lease(self, name: str) -> None:
        if name in self._leases:
            return
        self._leases[name] = asyncio.create_task(self._lease(name), name=f"lease:{name}")

    def _end_lease(self, name: str) -> None:
        lease = self._leases.pop(name, None)
        if lease is not None:
            lease.cancel()

    async def _lease(self, name: str) -> None:
        await asyncio.sleep(self.lease_s)
        self._leases.pop(name, None)
        reason = f"runner {name} was away longer than the {self.lease_s:g} s lease"
        for job in self._live():
            if job.bound_to == name and job.state is not JobState.LOST:
                what = "while running it" if job.runner else "before answering the offer"
                await self._record(job.id, "lost", reason=f"{reason} ({what})")

    # -- what runners report ----------------------------------------------------------

    async def _on_component_state(self, component: Component, state: Health,
                                  reason: str) -> None:
        if component.kind != "runner":
            return
        info = self.book.get(component.id)
        if state is Health.DOWN:
            if info.phase == "ready" and component.link is not None and \
                    self._ready_on.get(component.id) is component.link:
                # Missed health checks on a connection still open (SIGSTOP, a stall): if
                # it answers again, it is ready on that connection as it was.
                self._stalled.add(component.id)
            if info.phase not in ("shutdown", "revoked"):
                info.phase = "away"
            self._start_lease(component.id)
        elif state is Health.HALF_OPEN and reason == "registered":
            self._stalled.discard(component.id)
            self._end_lease(component.id)
        elif state is Health.UP and component.id in self._stalled:
            self._stalled.discard(component.id)
            if info.phase == "away" and component.link is not None and \
                    self._ready_on.get(component.id) is component.link:
                info.phase = "ready"
                self._end_lease(component.id)
                self.kick()

    async def _on_state(self, component: Component, message: Message) -> None:
        assert isinstance(message, RunnerState)
        info = self.book.get(component.id)
        info.phase, info.epoch = message.state, info.epoch + 1
        if message.labels or message.state == "starting":
            info.labels = list(message.labels)
        if message.free:
            info.free = dict(message.free)
        await self.book.save(info)
        await self._events.append("runner.state", component.id, {"phase": message.state})
        if message.state == "ready":
            self._ready_on[component.id] = component.link
            self._end_lease(component.id)
            await self._sync(component.id, set(message.jobs))
            self.kick()
        elif message.state == "shutdown":
            self._start_lease(component.id)

    async def _sync(self, name: str, known: set[str]) -> None:
        """After ``ready``: tell the runner what the hub holds of each job it may have."""
        for job in list(self.jobs.values()):
            if job.id in known:
                await self._send(name, self._ack(job, job.seq, rewind=True))
                if job.cancel_requested is not None and job.state is not JobState.LOST:
                    await self._send(name, JobCancel(job_id=job.id,
                                                     reason=job.cancel_requested))
                continue
            if job.state in FINAL or job.bound_to != name:
                continue
            if job.offered_to == name:
                await self._record(job.id, "withdrawn",
                                   reason=f"the offer did not reach {name}; offering again")
            elif job.state is JobState.RUNNING:
                await self._record(job.id, "lost",
                                   reason=f"runner {name} came back without a record of it")

    async def _on_inventory(self, component: Component, message: Message) -> None:
        assert isinstance(message, RunnerInventory)
        info = self.book.get(component.id)
        if not self.book.apply_inventory(info, message.full, message.hardware,
                                         message.removed, message.digest):
            await self._send(component.id, InventoryRequest())
            return
        await self.book.save(info)
        if message.full or message.hardware or message.removed:
            await self._events.append("runner.inventory", component.id,
                                      {"full": message.full,
                                       "changed": sorted(message.hardware),
                                       "removed": message.removed})

    async def _on_heartbeat(self, component: Component, message: Message) -> None:
        assert isinstance(message, RunnerHeartbeat)
        info = self.book.get(component.id)
        info.free, info.load, info.running = dict(message.free), list(message.load), \
            list(message.running)
        info.last_heartbeat = self._clock()
        info.epoch += 1
        self.kick()

    async def _on_refuse(self, component: Component, message: Message) -> None:
        assert isinstance(message, JobRefuse)
        job = self.jobs.get(message.job_id)
        if job is None or job.offered_to != component.id:
            return
        self._refused_epoch[(job.id, component.id)] = self.book.get(component.id).epoch
        await self._record(job.id, "refused", runner=component.id, reason=message.reason)
        self.kick()

    async def _on_event(self, component: Component, message: Message) -> None:
        assert isinstance(message, JobEvent)
        job = self.jobs.get(message.job_id)
        mine = job is not None and (job.bound_to == component.id or (
            job.state is JobState.LOST and job.runner == component.id))
        if job is None or not mine:
            if job is not None and message.event != "ended":
                await self._send(component.id, JobCancel(
                    job_id=message.job_id, reason="the job is not yours to run"))
            await self._send(component.id, JobAck(job_id=message.job_id, seq=message.seq))
            return
        if message.seq > job.seq:
            data = message.model_dump(exclude={"type", "job_id", "ts"}, exclude_none=True)
            await self._record(job.id, "report", runner=component.id, at=message.ts, **data)
            if message.event == "ended":
                self.book.get(component.id).epoch += 1
                self.kick()
        await self._send(component.id, self._ack(job, max(job.seq, message.seq)))

    async def _on_output(self, component: Component, message: Message) -> None:
        assert isinstance(message, JobOutput)
        job = self.jobs.get(message.job_id)
        if job is None or job.runner != component.id:
            return
        path = self.jobs_dir / job.id / "output.log"
        size = path.stat().st_size if path.exists() else 0
        data = base64.b64decode(message.data)
        end = message.offset + len(data)
        if message.offset > size:  # a gap: tell the runner where to continue from
            await self._send(component.id, self._ack(job, job.seq, rewind=True))
            return
        if end > size:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as handle:
                handle.write(data[size - message.offset:])
        if job.state in FINAL or job.state is JobState.LOST:  # the runner may archive it
            await self._send(component.id, self._ack(job, job.seq))

    async def _on_logs(self, component: Component, message: Message) -> None:
        assert isinstance(message, RunnerLogs)
        future = self._logs.get(message.request_id)
        if future is not None and not future.done():
            future.set_result(message.text)

    # -- helpers ----------------------------------------------------------------------

    def _ack(self, job: Job, seq: int, rewind: bool = False) -> JobAck:
        path = self.jobs_dir / job.id / "output.log"
        return JobAck(job_id=job.id, seq=seq, rewind=rewind,
                      output_bytes=path.stat().st_size if path.exists() else 0)

    def _live(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.state not in FINAL]

    async def _send(self, name: str, message: Message) -> bool:
        component = self.registry.components.get(name)
        if component is None or component.link is None:
            return False
        await component.link.send(message)
        return True

    async def _record(self, job_id: str, kind: str, /, **data: Any) -> None:
        """Persist an event, fold it, announce it; in one order for everyone."""
        async with self._lock:
            ts = self._clock()
            payload = {"job_id": job_id, **data} if kind == "submitted" else data
            job = apply(self.jobs.get(job_id), {"type": kind, "ts": ts, **payload})
            # The job's event and the hub's event in one transaction: a kill keeps both or
            # neither, so GET /api/v1/events never misses a change the job has.
            await self._events.append(f"job.{kind}", job_id, {
                "state": job.state.value, "progress": job.progress, "runner": job.runner,
                "error": job.error, **{k: v for k, v in data.items() if k != "payload"}},
                along=[("INSERT INTO job_events (job_id, ts, type, data) VALUES (?, ?, ?, ?)",
                        (job_id, ts, kind, json.dumps(payload)))])
            self.jobs[job_id] = job
        for watcher in self.watchers:
            try:
                await watcher(job, kind)
            except Exception:  # one watcher's bug must not stop the job's bookkeeping
                log.exception("a watcher of job %s failed", job_id)
        if kind != "report" or data.get("event") != "progress":
            log.info("job %s: %s %s", job_id, kind,
                     ", ".join(f"{k}={v}" for k, v in data.items() if k != "payload")[:200])
