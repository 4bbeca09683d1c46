"""The runner role: start-up report, inventory, heartbeat, offers, supervised jobs, sign-off.

Its life reads top to bottom (seed 001): :meth:`Runner.start` brings back the jobs its
journal holds (their shims may have run on while it was away); each registration runs
:meth:`Runner._announce` (``starting``, inventory in full or as a change, ``ready`` with
the jobs it holds); offers are accepted or refused on the event loop; each job is watched
by :meth:`Runner._supervise` until its end is journaled; :meth:`Runner.sign_off` posts
``shutdown`` and leaves the jobs running. Every report is journaled before it is sent and
resent until the hub acknowledges it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from backend import diskspace
from backend.agents import AgentSession
from backend.agents.hub_http import agent_hub_client
from backend.agents.media_cache import MediaCache, MediaError, limit_bytes
from backend.client import ClientError
from backend.protocol import Message
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
from backend.runner import inventory
from backend.runner.journal import (
    MEDIA_FILE,
    Journal,
    open_journals,
    read_json,
    write_atomic,
)
from backend.runner.launch import Shim, adopt_shim, find_shim, start_shim, unmet_at_start
from backend.runner.progress import ProgressParser
from backend.runner.resources import QUANTITIES, own_labels, shortfall

log = logging.getLogger(__name__)

MiB = 1024 * 1024
OUTPUT_CHUNK = 192 * 1024
#: What a full-disk refusal calls the runner's data dir (jobs' journals, output, artifacts).
ROOM = "the runner's data dir"


@dataclass(frozen=True)
class RunnerConfig:
    """The runner's settings, from its merged config (static defaults, file, hub)."""

    labels: tuple[str, ...] = ()
    heartbeat_s: float = 60.0
    report_interval_s: float = 1.0
    retry_s: float = 5.0
    grace_s: float = 10.0
    media_dir: str = "."

    @classmethod
    def of(cls, config: dict[str, Any]) -> RunnerConfig:
        return cls(
            labels=tuple(str(x) for x in config.get("labels") or ()),
            heartbeat_s=float(config.get("heartbeat_s", 60.0)),
            report_interval_s=float(config.get("report_interval_s", 1.0)),
            retry_s=float(config.get("retry_s", 5.0)),
            grace_s=float(config.get("grace_s", 10.0)),
            media_dir=str(config.get("media_dir", ".")),
        )


@dataclass
class ActiveJob:
    journal: Journal
    offer: dict[str, Any]
    shim: Shim | None = None
    sent_offset: int = 0
    output_acked: int = 0
    last_flush: float = 0.0
    progress: ProgressParser = field(default_factory=ProgressParser)
    reported_progress: float | None = None
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: Its media being fetched before it starts (cancelled by a stop).
    fetching: asyncio.Future[str | None] | None = None

    @property
    def id(self) -> str:
        return self.journal.job_id

    @property
    def ended(self) -> bool:
        return self.journal.ended is not None


class Runner:
    def __init__(self, session: AgentSession) -> None:
        self.session = session
        self.data_dir = session.settings.data_dir
        self.jobs_root = self.data_dir / "jobs"
        self.archive_root = self.data_dir / "archive"
        self.active: dict[str, ActiveJob] = {}
        self.hardware: dict[str, Any] = {}
        self._registrations = 0
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self.media = MediaCache.for_agent(self.data_dir)
        session.handlers.update({
            "job.offer": self._on_offer, "job.ack": self._on_ack,
            "job.cancel": self._on_cancel, "runner.inventory.request": self._on_inventory_req,
            "runner.logs.request": self._on_logs_request,
        })
        session.on_config_hooks.append(self._configured)

    @property
    def config(self) -> RunnerConfig:
        return RunnerConfig.of(self.session.config or self.session.settings.static_config)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Collect the hardware and pick up every job the journal still holds."""
        self.jobs_root.mkdir(parents=True, exist_ok=True)
        self.hardware = await asyncio.to_thread(inventory.collect, self.data_dir)
        for journal in open_journals(self.jobs_root):
            if journal.finished:
                journal.archive(self.archive_root)
                continue
            job = ActiveJob(journal, journal.offer)
            self.active[job.id] = job
            fetched = read_json(journal.dir / MEDIA_FILE)
            if fetched and not job.ended:  # its render may still be reading them
                self.media.pin(job.id, fetched.get("paths", {}))
            log.info("picked up job %s from the journal (last report #%d, acked #%d)",
                     job.id, journal.last_seq, journal.acked)
            self._supervise_soon(job)
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
        self._spawn(self._retry_loop())

    async def sign_off(self) -> None:
        """Tell the hub we are leaving and exit; running jobs keep running."""
        if self._stopping:
            return
        self._stopping = True
        log.info("signing off; %d job(s) keep running", sum(
            1 for j in self.active.values() if not j.ended))
        await self.session.send(RunnerState(state="shutdown", labels=list(self.config.labels)))
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.session.stop()

    # -- registration and start-up report -----------------------------------------------

    async def _configured(self, config: dict[str, Any]) -> None:
        if self.session.registrations != self._registrations:
            self._registrations = self.session.registrations
            self._spawn(self._announce())

    async def _announce(self) -> None:
        labels = list(self.config.labels)
        await self.session.send(RunnerState(state="starting", labels=labels))
        current = await asyncio.to_thread(inventory.collect, self.data_dir)
        self.hardware = current
        cached = inventory.load_cache(self.data_dir)
        if cached is None:
            await self._send_inventory(full=True)
        else:
            changed, removed = inventory.diff(cached, current)
            if changed or removed:
                log.info("hardware changed: %s", ", ".join([*changed, *removed]))
            await self.session.send(RunnerInventory(
                full=False, hardware=changed, removed=removed,
                digest=inventory.digest(current)))
        await asyncio.to_thread(inventory.save_cache, self.data_dir, current)
        # The hub answers ``ready`` with an ack (``rewind``) for each job listed: output
        # and unacknowledged reports are resent from there (see _on_ack).
        await self.session.send(RunnerState(state="ready", labels=labels,
                                            jobs=sorted(self.active), free=self.free()))
        await self._beat()

    async def _send_inventory(self, full: bool) -> None:
        await self.session.send(RunnerInventory(full=full, hardware=self.hardware,
                                                digest=inventory.digest(self.hardware)))

    async def _on_inventory_req(self, message: Message) -> None:
        assert isinstance(message, InventoryRequest)
        await self._send_inventory(full=True)

    # -- heartbeat and free resources -------------------------------------------------

    def free(self) -> dict[str, float]:
        """Capacity less what accepted jobs reserved, capped by what the OS has free."""
        hw = self.hardware
        totals = {
            "cpus": float(hw.get("cpu", {}).get("threads", 0)),
            "memory_mb": float(hw.get("memory", {}).get("total_mb", 0)),
            "disk_mb": psutil.disk_usage(str(self.data_dir)).free / MiB,
            "gpus": float(len(hw.get("gpus", []))),
        }
        for job in self.active.values():
            if not job.ended:
                for key, _ in QUANTITIES:
                    totals[key] -= float(job.offer.get("needs", {}).get(key) or 0)
        totals["memory_mb"] = min(totals["memory_mb"],
                                  psutil.virtual_memory().available / MiB)
        return {k: round(v, 3) for k, v in totals.items()}

    async def _beat(self) -> None:
        await self.session.send(RunnerHeartbeat(
            load=[round(x, 3) for x in os.getloadavg()], free=self.free(),
            running=sorted(j.id for j in self.active.values() if not j.ended)))

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            await self._beat()

    # -- offers -----------------------------------------------------------------------

    async def _on_offer(self, message: Message) -> None:
        assert isinstance(message, JobOffer)
        existing = self.active.get(message.job_id)
        if existing is not None:  # the hub offered again (our accept was not seen)
            await self._flush(existing)
            return
        reason = "the runner is signing off" if self._stopping else shortfall(
            message.needs, self.free(), own_labels(self.session.settings.name,
                                                   self.config.labels))
        if (self.archive_root / message.job_id).exists():
            reason = "this runner has already run the job"  # never twice
        offer = {**message.model_dump(exclude={"type"}), "media_dir": self.config.media_dir}
        journal = None
        if reason is None:  # a job is journaled before it is accepted: that needs room
            try:  # on the loop, as before: a repeated offer must find the job active
                journal = self._journal(message.job_id, offer)
            except diskspace.StorageFull as exc:
                reason = exc.message
        if journal is None:
            log.info("refused job %s: %s", message.job_id, reason)
            await self.session.send(JobRefuse(job_id=message.job_id, reason=reason or ""))
            return
        job = ActiveJob(journal, offer)
        self.active[job.id] = job
        await self._report(job, "accepted")
        self._supervise_soon(job)

    def _journal(self, job_id: str, offer: dict[str, Any]) -> Journal:
        """The new job's journal, or :class:`~backend.diskspace.StorageFull` when the data
        dir has no room for it (checked first; a journal half-made by a disk filling
        meanwhile is removed, so a restart does not pick up a job never accepted)."""
        diskspace.check(ROOM, self.data_dir)
        try:
            with diskspace.guard(ROOM, self.data_dir):
                return Journal.create(self.jobs_root, job_id, offer)
        except diskspace.StorageFull:
            shutil.rmtree(self.jobs_root / job_id, ignore_errors=True)
            raise

    async def _on_cancel(self, message: Message) -> None:
        assert isinstance(message, JobCancel)
        job = self.active.get(message.job_id)
        if job is not None and not job.ended:
            self._stop_job(job, "cancel", message.reason)

    # -- supervising one job ----------------------------------------------------------

    def _supervise_soon(self, job: ActiveJob) -> None:
        job.task = self._spawn(self._supervise(job))

    async def _supervise(self, job: ActiveJob) -> None:
        d = job.journal.dir
        if not job.ended and not (d / "shim.json").exists() and not (d / "exit.json").exists():
            # An earlier life may have started the shim and died before recording it:
            # adopt that one, or the job runs twice.
            job.shim = await asyncio.to_thread(adopt_shim, d)
            if job.shim is None:
                unmet = await asyncio.to_thread(unmet_at_start, job.offer.get("needs", {}),
                                                self.data_dir)
                if unmet is not None:
                    await self._end(job, "failed", error=unmet)
                    return
                failed = await self._fetch_or_stop(job)
                if failed is not None:
                    await self._end(job, "failed", error=failed)
                    return
                stopping = read_json(d / "stopping.json")
                if stopping is not None:  # cancelled while its media were fetched
                    await self._end(job, "cancelled" if stopping["why"] == "cancel"
                                    else "timed_out", error=stopping["reason"])
                    return
                job.shim = await asyncio.to_thread(start_shim, job.offer, d)
            await self._report(job, "started")
        elif not job.ended:
            job.shim = find_shim(read_json(d / "shim.json"))
            if not any(e["event"] == "started" for e in job.journal.events):
                # A shim ran (shim.json or exit.json says so) but the life that started it
                # died before journaling "started": the hub must still hear it once.
                await self._report(job, "started")
        while not job.ended:
            await self._pump(job)
            outcome = read_json(d / "exit.json")
            if outcome is None and (job.shim is None or not job.shim.alive()):
                outcome = read_json(d / "exit.json")  # it may have just been written
                if outcome is None:
                    outcome = {"lost": True}
            if outcome is not None:
                await self._pump(job)
                await self._finish(job, outcome)
                break
            self._check_stop(job)
            try:
                await asyncio.wait_for(job.wake.wait(), self.config.report_interval_s)
            except TimeoutError:
                pass
            job.wake.clear()

    async def _pump(self, job: ActiveJob) -> None:
        """Send new output, and journal and report progress when it changed."""
        path = job.journal.dir / "output.log"
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size > job.progress.offset:
            with path.open("rb") as handle:
                handle.seek(job.progress.offset)
                job.progress.feed(handle.read(size - job.progress.offset))
        while self.session.connected.is_set() and job.sent_offset < size:
            with path.open("rb") as handle:
                handle.seek(job.sent_offset)
                chunk = handle.read(min(OUTPUT_CHUNK, size - job.sent_offset))
            sent = await self.session.send(JobOutput(
                job_id=job.id, offset=job.sent_offset, data=base64.b64encode(chunk).decode()))
            if not sent:
                break
            job.sent_offset += len(chunk)
        latest = job.progress.latest
        if latest is not None and latest != job.reported_progress and not job.ended:
            job.reported_progress = latest
            await self._report(job, "progress", progress=latest)

    async def _fetch_media(self, job: ActiveJob) -> str | None:
        """Bring the media a render job's spec names by hash into the runner's cache and
        record where they are in ``media.json`` for the job's process; the reason when
        that fails (the job then fails with it instead of starting).

        Fetched here, in the service, not by the job's process: the cache is shared by
        every job (one download per file, not per job) and bounded as one, and the job's
        process needs no hub credentials. Done again after a restart that came before the
        shim started (a cache hit); a job whose shim started keeps its ``media.json``.
        """
        if job.offer.get("kind") != "render":
            return None
        from backend.audio import media_hashes, parse_task_spec  # the audio core: only here

        try:
            spec = parse_task_spec(job.offer["payload"]["spec"])
        except (KeyError, TypeError, ValueError):
            return None  # the job's process says what is wrong with the spec
        hashes = media_hashes(spec)
        if not hashes:
            return None
        limit = limit_bytes(self.session.config or self.session.settings.static_config)
        try:
            async with agent_hub_client(self.session) as client:
                paths = await self.media.acquire(job.id, hashes, limit, client)
        except MediaError as exc:
            return exc.message
        try:
            with diskspace.guard(ROOM, self.data_dir):
                await asyncio.to_thread(
                    write_atomic, job.journal.dir / MEDIA_FILE,
                    {"paths": {sha: str(path) for sha, path in paths.items()}})
        except diskspace.StorageFull as exc:
            self.media.unpin(job.id)
            return exc.message
        except OSError as exc:
            self.media.unpin(job.id)
            return f"could not record where the job's media are ({MEDIA_FILE}): {exc}"
        return None

    async def _fetch_or_stop(self, job: ActiveJob) -> str | None:
        """:meth:`_fetch_media`, cut short when the job is stopped meanwhile (a cancel
        must not wait for a download of gigabytes); the caller then reads the stop."""
        job.fetching = asyncio.ensure_future(self._fetch_media(job))
        try:
            await asyncio.wait({job.fetching})
        except asyncio.CancelledError:
            job.fetching.cancel()
            raise
        fetched, job.fetching = job.fetching, None
        return None if fetched.cancelled() else fetched.result()

    def _check_stop(self, job: ActiveJob) -> None:
        d = job.journal.dir
        stopping = read_json(d / "stopping.json")
        if stopping is None:
            timeout = job.offer.get("timeout_s")
            started = next((e["ts"] for e in job.journal.events
                            if e["event"] == "started"), None)
            if timeout and started is not None and time.time() - started > float(timeout):
                self._stop_job(job, "timeout", f"timed out after {float(timeout):g} s")
            return
        if not self._terminate(job, stopping) and \
                time.time() - float(stopping["at"]) > self.config.grace_s:
            self._signal_job(job, signal.SIGKILL)

    def _stop_job(self, job: ActiveJob, why: str, reason: str) -> None:
        """SIGTERM now, SIGKILL after the grace period; the reason is journaled first."""
        path = job.journal.dir / "stopping.json"
        stopping = read_json(path)
        if stopping is None:
            stopping = {"why": why, "reason": reason, "at": time.time()}
            write_atomic(path, stopping)
            log.info("stopping job %s: %s", job.id, reason)
        self._terminate(job, stopping)
        if job.fetching is not None:
            job.fetching.cancel()  # its media: the stop is read once it returns
        job.wake.set()

    def _terminate(self, job: ActiveJob, stopping: dict[str, Any]) -> bool:
        """SIGTERM the job once its program runs, and start the grace period then: a job
        stopped before its program started gets it as soon as it has, so it may clean up
        (a render deletes its partial files) instead of being killed. Whether it was sent
        now."""
        if stopping.get("signalled") or not self._signal_job(job, signal.SIGTERM):
            return False
        write_atomic(job.journal.dir / "stopping.json",
                     {**stopping, "signalled": True, "at": time.time()})
        return True

    def _signal_job(self, job: ActiveJob, sig: signal.Signals) -> bool:
        """Signal the job's process group; whether there was one to signal."""
        child = read_json(job.journal.dir / "child.json")
        if child is None:
            return False  # not started yet: the next tick tries again
        try:
            os.killpg(int(child["pid"]), sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    async def _finish(self, job: ActiveJob, outcome: dict[str, Any]) -> None:
        stopping = read_json(job.journal.dir / "stopping.json")
        code = outcome.get("exit_code")
        duration = None
        if "ended" in outcome and "started" in outcome:
            duration = round(float(outcome["ended"]) - float(outcome["started"]), 3)
        if stopping is not None:
            state = "cancelled" if stopping["why"] == "cancel" else "timed_out"
            await self._end(job, state, exit_code=code, error=stopping["reason"],
                            duration_s=duration)
            return
        if outcome.get("lost"):
            error = "the job's shim died without recording how the job ended"
            try:  # the usual cause: no room for its output or exit.json
                diskspace.check(ROOM, self.data_dir)
            except diskspace.StorageFull as exc:
                error = f"{error}: {exc.message}"
            await self._end(job, "failed", error=error)
            return
        if code == 0:
            artifacts = await self._upload_artifacts(job)
            await self._end(job, "succeeded", exit_code=0, duration_s=duration,
                            artifacts=artifacts)
            return
        error = outcome.get("error") or (
            f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
            else f"exit code {code}")
        await self._end(job, "failed", exit_code=code, error=error, duration_s=duration)

    async def _upload_artifacts(self, job: ActiveJob) -> list[str]:
        folder = job.journal.dir / "artifacts"
        names = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) \
            if folder.exists() else []
        async with agent_hub_client(self.session) as client:
            for name in names:
                marker = folder / f".uploaded-{name}"
                while not marker.exists():
                    try:
                        await client.upload_artifact(job.id, name, folder / name)
                        marker.touch()
                    except ClientError as exc:
                        log.warning("upload of %s for %s failed (%s); retrying", name,
                                    job.id, exc.message)
                        await asyncio.sleep(self.config.retry_s)
        return names

    async def _end(self, job: ActiveJob, state: str, **data: Any) -> None:
        log.info("job %s %s %s", job.id, state, data.get("error") or "")
        self.media.unpin(job.id)
        await self._report(job, "ended", state=state, **data)

    # -- reports and their acknowledgements -------------------------------------------

    async def _report(self, job: ActiveJob, event: str, **data: Any) -> None:
        entry = await self._journal_report(job, event, data)
        await self.session.send(_event(job.id, entry))

    async def _journal_report(self, job: ActiveJob, event: str,
                              data: dict[str, Any]) -> dict[str, Any]:
        """Journal a report, waiting for room when the data dir is full: a report is
        sent only once it is journaled (so it can be resent), and the job's supervision
        must not die with the disk; it goes on by itself when space returns."""
        waiting = False
        while True:
            try:
                with diskspace.guard(ROOM, self.data_dir):
                    return job.journal.append(event, time.time(), **data)
            except diskspace.StorageFull as exc:
                if not waiting:
                    log.warning("cannot journal %s of job %s: %s; retrying every %g s",
                                event, job.id, exc.message, self.config.retry_s)
                waiting = True
                await asyncio.sleep(self.config.retry_s)

    async def _flush(self, job: ActiveJob) -> None:
        """Send every report the hub has not acknowledged (again)."""
        job.last_flush = time.monotonic()
        for entry in job.journal.unacked():
            if not await self.session.send(_event(job.id, entry)):
                return

    async def _on_ack(self, message: Message) -> None:
        assert isinstance(message, JobAck)
        job = self.active.get(message.job_id)
        if job is None:
            return
        job.journal.ack(min(message.seq, job.journal.last_seq))
        job.output_acked = max(job.output_acked, message.output_bytes)
        if message.rewind:
            job.sent_offset = job.output_acked = message.output_bytes
            self._spawn(self._resend(job))
        self._archive_if_done(job)

    async def _resend(self, job: ActiveJob) -> None:
        """After a reconnect: output first, then the reports (so ``ended`` comes last)."""
        await self._pump(job)
        await self._flush(job)

    def _archive_if_done(self, job: ActiveJob) -> None:
        """Archive once the hub has acknowledged the end and holds all the output."""
        if not job.journal.finished or job.id not in self.active:
            return
        try:
            size = (job.journal.dir / "output.log").stat().st_size
        except OSError:
            size = 0
        if job.output_acked >= size:
            self.active.pop(job.id, None)
            kept = job.journal.archive(self.archive_root)
            payload = job.offer.get("payload")
            if job.offer.get("kind") == "render" and isinstance(payload, dict) and \
                    payload.get("chunks") is not None:
                # A farm part's streams are the hub's now (it acknowledged the end after
                # the upload); at 768 kB per second of audio each, they are not kept.
                for stream in (kept / "artifacts").glob("*chunk-*.f64"):  # and markers
                    stream.unlink(missing_ok=True)

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.report_interval_s)
            now = time.monotonic()
            for job in list(self.active.values()):
                try:
                    if job.ended:
                        await self._pump(job)
                    if job.journal.unacked() and now - job.last_flush > self.config.retry_s:
                        await self._flush(job)
                except Exception:  # one bad job must not stop the retries of others
                    log.exception("resending the reports of %s failed", job.id)

    # -- logs -------------------------------------------------------------------------

    async def _on_logs_request(self, message: Message) -> None:
        assert isinstance(message, RunnerLogsRequest)
        text = await asyncio.to_thread(_tail, self.data_dir / "logs" / "agent.log",
                                       message.lines)
        await self.session.send(RunnerLogs(request_id=message.request_id, text=text))

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("runner task failed", exc_info=task.exception())


def _event(job_id: str, entry: dict[str, Any]) -> JobEvent:
    """A journal entry as a message (fields a newer journal may hold are left out)."""
    return JobEvent(job_id=job_id, **{k: v for k, v in entry.items()
                                      if k in JobEvent.model_fields and k != "type"})


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            return b"".join(deque(handle, maxlen=lines)).decode(errors="replace")
    except OSError:
        return ""
