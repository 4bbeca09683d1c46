"""JobService over fake runner links: the real registry, event log and SQLite store, no sockets.

The integration tests run real runner processes; these drive the service's own rules
(placement, offers and refusals, reports applied once, cancel, the lease) in milliseconds,
with the runner an in-memory link that records what the hub sends, and the test speaking
for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from backend.hub.component import Component
from backend.hub.events import EventLog
from backend.hub.health import Health, HealthSettings
from backend.hub.jobs.service import JobError, JobService
from backend.hub.jobs.state import Job, JobState
from backend.hub.registry import Registry
from backend.hub.schema import MIGRATIONS
from backend.protocol import Hello, Message
from backend.protocol.jobs import (
    JobAck,
    JobCancel,
    JobEvent,
    JobOffer,
    JobRefuse,
    RunnerHeartbeat,
    RunnerInventory,
    RunnerState,
)
from backend.runner import inventory
from backend.store import Store

RUNNER = "runner-1"
FREE = {"cpus": 4.0, "memory_mb": 8000.0, "disk_mb": 10000.0, "gpus": 0.0}
PAYLOAD = {"argv": ["true"], "cwd": None, "env": {}, "shell": False}


class FakeRunner:
    """A runner's link as the hub sees it: records what is sent; the test speaks for it."""

    def __init__(self, registry: Registry, name: str = RUNNER) -> None:
        self.registry = registry
        self.name = name
        self.peer_host: str | None = "127.0.0.1"
        self.sent: list[Message] = []
        self.closed: tuple[int, str] | None = None
        self.component: Component | None = None

    async def connect(self, ready: bool = True, jobs: list[str] | None = None) -> None:
        """Register (a new connection each time, as after a restart) and say ``ready``."""
        hello = Hello(kind="runner", name=self.name, config={"labels": ["linux"]})
        self.component = await self.registry.register(hello, f"ag_{self.name}", self)
        await self.registry.set_state(self.component, Health.UP, "answered a health check")
        if ready:
            await self.report(RunnerState(state="ready", labels=["linux"], jobs=jobs or [],
                                          free=FREE))

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def send_bytes(self, data: bytes) -> None:
        raise AssertionError("runners get no binary frames")

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    async def report(self, message: Message) -> None:
        assert self.component is not None
        await self.registry.dispatch.message(self.component, message)

    async def journal(self, job_id: str, seq: int, event: str, **data: Any) -> None:
        await self.report(JobEvent(job_id=job_id, seq=seq, event=event,  # type: ignore[arg-type]
                                   ts=time.time(), **data))

    def got(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.sent if isinstance(m, kind)]


class Hub:
    """The parts of a hub a JobService needs, over one SQLite store in a temp dir."""

    def __init__(self, store: Store, tmp_path: Path, lease_s: float) -> None:
        self.store = store
        self.events = EventLog(store)
        self.registry = Registry(store, self.events, HealthSettings())
        self.jobs = JobService(self.registry, store, self.events, tmp_path, lease_s=lease_s)
        self.runner = FakeRunner(self.registry)

    async def submit(self, **needs: Any) -> Job:
        return await self.jobs.submit("command", {"cpus": 1.0, **needs}, PAYLOAD, None)

    async def events_of(self, job_id: str) -> list[str]:
        return [e.type for e in await self.events.since(0) if e.subject == job_id]

    async def stored(self, job_id: str) -> int:
        rows = await self.store.query("SELECT id FROM job_events WHERE job_id = ?", (job_id,))
        return len(rows)


@pytest.fixture
async def open_hub(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Hub] = []
    store = Store(tmp_path / "hub.sqlite3", MIGRATIONS)
    await store.open()

    async def make(lease_s: float = 60.0) -> Hub:
        hub = Hub(store, tmp_path, lease_s)
        await hub.jobs.load()
        opened.append(hub)
        return hub

    try:
        yield make
    finally:
        for hub in opened:
            await hub.jobs.shutdown()
        await store.close()


@pytest.fixture
async def hub(open_hub: Callable[..., Any]) -> Hub:
    made: Hub = await open_hub()
    return made


async def until(check: Callable[[], bool], what: str, within: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def running(hub: Hub) -> Job:
    """A job offered to the runner and accepted (journal entry 1)."""
    await hub.runner.connect()
    job = await hub.submit()
    await until(lambda: job.offered_to == RUNNER, "the offer")
    await hub.runner.journal(job.id, 1, "accepted")
    assert job.state is JobState.RUNNING
    return job


async def test_a_job_is_offered_accepted_reports_progress_and_succeeds(hub: Hub) -> None:
    job = await hub.submit(memory_mb=100)
    assert job.state is JobState.QUEUED and job.view()["commands"] == ["cancel"]
    await until(lambda: job.reason == "no runner is ready", "the reason it waits")

    await hub.runner.connect()
    await until(lambda: job.offered_to == RUNNER, "the offer")
    (offer,) = hub.runner.got(JobOffer)
    assert (offer.job_id, offer.kind, offer.payload) == (job.id, "command", PAYLOAD)
    assert offer.needs == {"cpus": 1.0, "memory_mb": 100}

    await hub.runner.journal(job.id, 1, "accepted")
    assert job.state is JobState.RUNNING and job.runner == RUNNER and job.offered_to is None
    await hub.runner.journal(job.id, 2, "started")
    await hub.runner.journal(job.id, 3, "progress", progress=0.5)
    assert job.progress == 0.5
    await hub.runner.journal(job.id, 4, "ended", state="succeeded", exit_code=0,
                             duration_s=1.5, artifacts=["out.txt"])
    assert job.state is JobState.SUCCEEDED and job.progress == 1.0
    assert (job.exit_code, job.duration_s, job.artifacts) == (0, 1.5, ["out.txt"])
    assert job.view()["commands"] == []
    assert [a.seq for a in hub.runner.got(JobAck)] == [1, 2, 3, 4]  # each entry acknowledged
    assert await hub.events_of(job.id) == [
        "job.submitted", "job.waiting", "job.offered", "job.report", "job.report",
        "job.report", "job.report"]
    with pytest.raises(JobError) as info:
        await hub.jobs.cancel(job.id)
    assert info.value.status == 409 and "already succeeded" in info.value.message


async def test_a_report_sent_twice_is_applied_once_and_acknowledged_again(hub: Hub) -> None:
    job = await running(hub)
    await hub.runner.journal(job.id, 2, "progress", progress=0.3)
    stored = await hub.stored(job.id)
    # A reconnect makes the runner resend what it had no ack for: same seq, never applied
    # again (the different progress shows it).
    await hub.runner.journal(job.id, 2, "progress", progress=0.9)
    await hub.runner.journal(job.id, 1, "accepted")
    assert job.progress == 0.3 and job.seq == 2
    assert await hub.stored(job.id) == stored
    assert [a.seq for a in hub.runner.got(JobAck)] == [1, 2, 2, 2]


async def test_a_refusal_keeps_the_job_queued_with_the_reason_until_the_runner_changes(
        hub: Hub) -> None:
    await hub.runner.connect()
    job = await hub.submit(cpus=2.0)
    await until(lambda: job.offered_to == RUNNER, "the offer")
    await hub.runner.report(JobRefuse(job_id=job.id, reason="needs 2 CPUs, 1 free"))
    assert job.state is JobState.QUEUED and job.offered_to is None
    assert job.refused == {RUNNER: "needs 2 CPUs, 1 free"}
    assert job.reason == "runner-1 refused: needs 2 CPUs, 1 free"
    # Not offered to the same runner again while nothing changed there...
    await until(lambda: job.reason == "waiting for room on runner-1", "waiting for room")
    assert len(hub.runner.got(JobOffer)) == 1
    # ...and offered again once it reports something new (a heartbeat).
    await hub.runner.report(RunnerHeartbeat(load=[0.1], free=FREE))
    await until(lambda: len(hub.runner.got(JobOffer)) == 2, "a second offer")
    assert job.offered_to == RUNNER
    assert "job.refused" in await hub.events_of(job.id)


async def test_a_job_larger_than_every_runner_waits_with_the_reason(hub: Hub) -> None:
    hardware = {"cpu": {"threads": 4}, "memory": {"total_mb": 8000},
                "work_disk": {"total_mb": 10000}, "gpus": []}
    await hub.runner.connect()
    await hub.runner.report(RunnerInventory(full=True, hardware=hardware,
                                            digest=inventory.digest(hardware)))
    job = await hub.submit(cpus=8.0)
    await until(lambda: job.reason is not None and "no runner fits" in job.reason,
                "the reason it waits")
    assert job.reason == "no runner fits: runner-1 needs 8 CPUs, 4 in all"
    assert job.state is JobState.QUEUED and not hub.runner.got(JobOffer)


async def test_cancel_a_queued_job_at_once_and_a_running_one_through_its_runner(
        hub: Hub) -> None:
    queued = await hub.submit()  # no runner yet: nobody else has it
    await hub.jobs.cancel(queued.id)
    assert queued.state is JobState.CANCELLED and queued.error == "cancelled by the operator"
    assert "job.cancelled" in await hub.events_of(queued.id)
    with pytest.raises(JobError) as info:
        await hub.jobs.cancel(queued.id)
    assert info.value.status == 409 and "already cancelled" in info.value.message

    job = await running(hub)
    await hub.jobs.cancel(job.id, reason="wrong take")
    assert job.state is JobState.RUNNING and job.cancel_requested == "wrong take"
    assert [(m.job_id, m.reason) for m in hub.runner.got(JobCancel)] == [(job.id, "wrong take")]
    await hub.runner.journal(job.id, 2, "ended", state="cancelled", exit_code=-15,
                             error="wrong take")
    assert job.state is JobState.CANCELLED and job.exit_code == -15
    with pytest.raises(JobError):
        await hub.jobs.cancel("j_000000000000")


async def test_a_runner_away_longer_than_the_lease_loses_its_job_until_it_reports(
        open_hub: Callable[..., Any]) -> None:
    hub: Hub = await open_hub(lease_s=0.05)
    job = await running(hub)
    component, link = hub.runner.component, hub.runner
    assert component is not None
    await hub.registry.disconnected(component, link, "connection closed")
    await until(lambda: job.state is JobState.LOST, "the job lost", within=0.5)
    assert job.error == ("runner runner-1 was away longer than the 0.05 s lease "
                         "(while running it)")
    assert job.view()["commands"] == []
    with pytest.raises(JobError):
        await hub.jobs.cancel(job.id)

    # Back with its journal: the real outcome replaces "lost", once.
    await hub.runner.connect(jobs=[job.id])
    await hub.runner.journal(job.id, 2, "ended", state="succeeded", exit_code=0)
    assert job.state is JobState.SUCCEEDED and job.replaced_lost
    assert (await hub.events_of(job.id)).count("job.lost") == 1


async def test_a_runner_back_within_the_lease_keeps_its_job(
        open_hub: Callable[..., Any]) -> None:
    hub: Hub = await open_hub(lease_s=0.2)
    job = await running(hub)
    assert hub.runner.component is not None
    await hub.registry.disconnected(hub.runner.component, hub.runner, "connection closed")
    await hub.runner.connect(jobs=[job.id])  # a new connection, before the lease ends
    await asyncio.sleep(0.3)
    assert job.state is JobState.RUNNING and job.runner == RUNNER
    rewinds = [a for a in hub.runner.got(JobAck) if a.rewind]
    assert [a.seq for a in rewinds] == [1]  # told where its journal stands with the hub


async def test_a_runner_back_without_a_record_of_its_job_loses_it(hub: Hub) -> None:
    job = await running(hub)
    await hub.runner.connect(jobs=[])  # restarted and lost its journal
    assert job.state is JobState.LOST
    assert job.error == "runner runner-1 came back without a record of it"
