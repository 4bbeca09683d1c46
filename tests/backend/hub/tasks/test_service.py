"""TaskService over fake agent links: the real registry, event log and SQLite store, no sockets.

The integration tests run real engines and drivers; these drive the service's own rules
(reservation, the push and its answers, the transport guards, release) in milliseconds,
with each agent an in-memory link that records what the hub sends and answers as told.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from backend.audio.spec import TaskSpec
from backend.hub.component import Component
from backend.hub.events import EventLog
from backend.hub.health import Health, HealthSettings
from backend.hub.registry import Registry
from backend.hub.schema import MIGRATIONS
from backend.hub.tasks.service import TaskError, TaskService
from backend.hub.tasks.state import RenderState, TaskState
from backend.protocol import Hello, Message
from backend.protocol.tasks import (
    PlayStart,
    PlayStop,
    RenderCancel,
    RenderStart,
    TaskAccepted,
    TaskDrop,
    TaskRefused,
    TaskSpecPush,
)
from backend.store import Store

ENGINE, DRIVER = "engine-1", "driver-1"
FIXED = "driver-1.comp"
SPEC: dict[str, Any] = {
    "sample_rate": 48000,
    "block_size": 1024,
    "tracks": [{"id": "bass", "chain": [FIXED, "eq1"],
                "source": {"type": "tone", "freq_hz": 110, "level_dbfs": -9, "duration_s": 1}}],
    "instances": {
        FIXED: {"model": "compressor", "location": {"driver": DRIVER}},
        "eq1": {"model": "eq"},
    },
    "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"},
}

Answer = Callable[[Message], Message | None]


def accept(message: Message) -> Message | None:
    """An agent that accepts every spec it is sent."""
    if isinstance(message, TaskSpecPush):
        return TaskAccepted(task_id=message.task_id)
    return None


def silent(message: Message) -> Message | None:
    """An agent that never answers (the push times out)."""
    return None


class FakeAgent:
    """An agent's link as the hub sees it: records what is sent, answers as told.

    Answers arrive as separate messages through the registry's dispatcher, after the send
    returns, as a real agent's would.
    """

    def __init__(self, registry: Registry, kind: str, name: str,
                 config: dict[str, Any] | None = None, answer: Answer = accept) -> None:
        self.registry = registry
        self.kind, self.name = kind, name
        self.config = config or {}
        self.answer = answer
        self.peer_host: str | None = "127.0.0.1"
        self.sent: list[Message] = []
        self.closed: tuple[int, str] | None = None
        self.component: Component | None = None
        self._replies: set[asyncio.Task[None]] = set()

    async def connect(self) -> Component:
        hello = Hello(kind=self.kind, name=self.name, config=self.config)  # type: ignore[arg-type]
        self.component = await self.registry.register(hello, f"ag_{self.name}", self)
        await self.registry.set_state(self.component, Health.UP, "answered a health check")
        return self.component

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        reply = self.answer(message)
        if reply is not None:
            task = asyncio.create_task(self.report(reply))
            self._replies.add(task)
            task.add_done_callback(self._replies.discard)

    async def send_bytes(self, data: bytes) -> None:
        raise AssertionError("no audio in these tests")

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    async def report(self, message: Message) -> None:
        assert self.component is not None
        await self.registry.dispatch.message(self.component, message)

    def got(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.sent if isinstance(m, kind)]


class Hub:
    """The parts of a hub a TaskService needs, over one SQLite store in a temp dir."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        self.store = store
        self.events = EventLog(store)
        self.registry = Registry(store, self.events, HealthSettings())
        self.tasks = TaskService(self.registry, store, self.events, tmp_path,
                                 push_timeout_s=0.2)
        self.engine = FakeAgent(self.registry, "engine", ENGINE)
        self.driver = FakeAgent(self.registry, "driver", DRIVER, config={
            "instances": [{"id": FIXED, "model": "compressor"},
                          {"id": "driver-1.tape", "model": "saturator"}]})

    async def event_types(self) -> list[str]:
        return [e.type for e in await self.events.since(0) if e.type.startswith("task.")]


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    store = Store(tmp_path / "hub.sqlite3", MIGRATIONS)
    await store.open()
    made = Hub(store, tmp_path)
    await made.tasks.load()
    try:
        yield made
    finally:
        await made.tasks.shutdown()
        await store.close()


async def until(check: Callable[[], bool], what: str, within: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


def spec(**window: str) -> TaskSpec:
    data = copy.deepcopy(SPEC)
    data["window"].update(window)
    return TaskSpec.model_validate(data)


async def ready_task(hub: Hub) -> str:
    await hub.engine.connect()
    await hub.driver.connect()
    task = await hub.tasks.reserve(spec(), None)
    await until(lambda: task.state is TaskState.READY, "the task ready")
    return task.id


async def refused(status: int, call: Any, match: str) -> None:
    with pytest.raises(TaskError) as info:
        await call
    assert info.value.status == status, info.value.message
    assert match in info.value.message


async def test_a_restart_removes_the_files_of_renders_it_fails(
        hub: Hub, tmp_path: Path) -> None:
    """Found by the chaos suite: the hub SIGKILLed while a render's file arrived (or
    between renaming it ``.wav`` and committing ``render_done``) left the file in its
    render store for good, for a render failed with "the hub restarted"."""
    tid = await ready_task(hub)
    done = await hub.tasks.render(tid, "wav24", None)
    await hub.tasks.record(tid, "render_done", render_id=done.render_id,
                            file=f"{done.render_id}.wav", bytes=16)
    cut = await hub.tasks.render(tid, "wav24", None)
    store = tmp_path / "renders" / tid
    store.mkdir(parents=True, exist_ok=True)
    kept = store / f"{done.render_id}.wav"
    kept.write_bytes(b"RIFF a whole one")
    leftovers = [store / f"{cut.render_id}.part", store / f"{cut.render_id}.wav"]
    for path in leftovers:
        path.write_bytes(b"RIFF half a file")
    again = TaskService(hub.registry, hub.store, hub.events, tmp_path)
    await again.load()
    try:
        assert again.tasks[tid].renders[cut.render_id].error == "the hub restarted"
        assert kept.exists() and not any(path.exists() for path in leftovers)
    finally:
        await again.shutdown()


async def test_reserve_pushes_the_spec_and_is_ready_once_engine_and_driver_accept(
        hub: Hub) -> None:
    await hub.engine.connect()
    await hub.driver.connect()
    task = await hub.tasks.reserve(spec(), None)
    assert task.state is TaskState.PENDING and task.engine == ENGINE
    assert task.drivers == {DRIVER: [FIXED]}
    assert task.view()["commands"] == ["release"]

    await until(lambda: task.state is TaskState.READY, "the task ready")
    (to_engine,), (to_driver,) = hub.engine.got(TaskSpecPush), hub.driver.got(TaskSpecPush)
    assert to_engine.task_id == to_driver.task_id == task.id
    assert to_engine.instances == [] and to_driver.instances == [FIXED]
    assert to_engine.spec["instances"][FIXED]["location"] == {"driver": DRIVER}
    assert task.waiting == set() and task.error is None
    assert task.view()["commands"] == ["patch", "play", "release", "render"]
    assert await hub.event_types() == ["task.reserved", "task.accepted", "task.accepted"]
    rows = await hub.store.query("SELECT type FROM task_events WHERE task_id = ?", (task.id,))
    assert [r["type"] for r in rows] == ["reserved", "accepted", "accepted"]


async def test_a_driver_that_refuses_fails_the_task_with_its_reason(hub: Hub) -> None:
    def no_room(message: Message) -> Message | None:
        if isinstance(message, TaskSpecPush):
            return TaskRefused(task_id=message.task_id, reason="rack is full")
        return None

    hub.driver.answer = no_room
    await hub.engine.connect()
    await hub.driver.connect()
    task = await hub.tasks.reserve(spec(), None)
    await until(lambda: task.state is TaskState.FAILED, "the task failed")
    assert task.error == "driver-1 refused the spec: rack is full"
    assert task.view()["commands"] == ["release"]
    await refused(409, hub.tasks.play(task.id), "it is failed")
    events = [e for e in await hub.events.since(0) if e.type == "task.refused"]
    assert [(e.subject, e.data["component"], e.data["reason"], e.data["state"])
            for e in events] == [(task.id, DRIVER, "rack is full", "failed")]


async def test_a_driver_that_never_answers_fails_the_task_when_the_push_times_out(
        hub: Hub) -> None:
    hub.driver.answer = silent
    await hub.engine.connect()
    await hub.driver.connect()
    task = await hub.tasks.reserve(spec(), None)
    await until(lambda: task.state is TaskState.FAILED, "the push timed out")
    assert task.error == "driver-1 refused the spec: did not answer within 0.2 s"


async def test_reserve_refuses_without_an_engine_or_with_an_unknown_instance(
        hub: Hub) -> None:
    await refused(409, hub.tasks.reserve(spec(), None), "no engine is up")
    await hub.engine.connect()
    await refused(422, hub.tasks.reserve(spec(), None), "no instance driver named 'driver-1'")
    hub.driver.config = {"instances": [{"id": FIXED, "model": "eq"}]}
    await hub.driver.connect()
    await refused(422, hub.tasks.reserve(spec(), None), "driver-1's driver-1.comp is a eq")
    assert hub.tasks.tasks == {} and await hub.event_types() == []


async def test_an_overlapping_reservation_of_the_same_fixed_instance_is_a_conflict(
        hub: Hub) -> None:
    first = await ready_task(hub)
    await refused(409, hub.tasks.reserve(spec(start="2026-11-22T11:00:00Z",
                                              end="2026-11-22T13:00:00Z"), None),
                  f"instance 'driver-1.comp' on driver-1 is already reserved by task {first}")
    assert len(hub.tasks.tasks) == 1

    # Back to back is no overlap; nor is anything once the first is released.
    later = await hub.tasks.reserve(spec(start="2026-11-22T12:00:00Z",
                                         end="2026-11-22T13:00:00Z"), None)
    await hub.tasks.release(first)
    again = await hub.tasks.reserve(spec(), None)
    await until(lambda: later.state is again.state is TaskState.READY, "both ready")


async def test_play_stop_render_and_cancel_are_refused_in_the_wrong_state(hub: Hub) -> None:
    hub.driver.answer = silent  # pending until the push times out
    await hub.engine.connect()
    await hub.driver.connect()
    pending = await hub.tasks.reserve(spec(), None)
    why = "it is pending; wait until every component has accepted the spec"
    await refused(409, hub.tasks.play(pending.id), why)
    await refused(409, hub.tasks.render(pending.id, "wav24", None), why)
    await until(lambda: pending.state is TaskState.FAILED, "the push timed out")
    await hub.tasks.release(pending.id)

    hub.driver.answer = accept
    task = await hub.tasks.reserve(spec(), None)
    task_id = task.id
    await until(lambda: task.state is TaskState.READY, "ready")
    await refused(409, hub.tasks.stop(task_id), "cannot stop task")
    await refused(404, hub.tasks.cancel_render(task_id, "r_000000000000"), "has no render")

    await hub.tasks.play(task_id)
    assert task.state is TaskState.PLAYING and task.view()["commands"] == [
        "patch", "release", "stop"]
    (play,) = hub.engine.got(PlayStart)
    assert play.task_id == task_id
    await refused(409, hub.tasks.play(task_id), "it is playing; stop it first")
    await refused(409, hub.tasks.render(task_id, "wav24", None), "it is playing")
    await hub.tasks.stop(task_id)
    assert task.state is TaskState.READY and len(hub.engine.got(PlayStop)) == 1

    render = await hub.tasks.render(task_id, "float32", [0.0, 0.5])
    assert task.state is TaskState.RENDERING and render.state is RenderState.RUNNING
    (start,) = hub.engine.got(RenderStart)
    assert (start.render_id, start.format, start.segment) == (render.render_id, "float32",
                                                              [0.0, 0.5])
    await refused(409, hub.tasks.render(task_id, "wav24", None),
                  "it is rendering; wait for the render or cancel it first")
    await refused(409, hub.tasks.play(task_id), "it is rendering")
    await hub.tasks.cancel_render(task_id, render.render_id)
    assert render.state is RenderState.CANCELLED and task.state is TaskState.READY
    assert [m.render_id for m in hub.engine.got(RenderCancel)] == [render.render_id]
    await refused(409, hub.tasks.cancel_render(task_id, render.render_id),
                  "is cancelled, not running")
    types = [e.type for e in await hub.events.since(0) if e.subject == task_id]
    assert types == ["task.reserved", "task.accepted", "task.accepted", "task.play",
                     "task.stopped", "task.render", "task.render_cancelled"]


async def test_release_stops_the_play_drops_the_spec_everywhere_and_is_final(
        hub: Hub) -> None:
    task_id = await ready_task(hub)
    await hub.tasks.play(task_id)
    task = await hub.tasks.release(task_id)
    assert task.state is TaskState.RELEASED and task.view()["commands"] == []
    (stop,) = hub.engine.got(PlayStop)
    assert stop.reason == "released"
    assert [m.task_id for m in hub.engine.got(TaskDrop)] == [task_id]
    assert [m.task_id for m in hub.driver.got(TaskDrop)] == [task_id]
    await refused(409, hub.tasks.release(task_id), "it is released; reserve a new task")
    await refused(409, hub.tasks.play(task_id), "it is released")
    await refused(404, hub.tasks.release("t_000000000000"), "no task")
    types = [e.type for e in await hub.events.since(0) if e.subject == task_id]
    assert types[-3:] == ["task.play", "task.stopped", "task.released"]


async def test_a_driver_going_down_fails_the_play_and_its_return_makes_the_task_ready(
        hub: Hub) -> None:
    task_id = await ready_task(hub)
    task = hub.tasks.get(task_id)
    await hub.tasks.play(task_id)
    assert hub.driver.component is not None
    await hub.registry.set_state(hub.driver.component, Health.DOWN, "missed 3 health checks")
    assert task.state is TaskState.FAILED
    assert task.error == "driver-1 is down: missed 3 health checks"
    assert [m.reason for m in hub.engine.got(PlayStop)] == [
        "driver-1 went down: missed 3 health checks"]  # the rest of the chain stops

    pushes = len(hub.driver.got(TaskSpecPush))
    await hub.driver.connect()  # registers again: the spec is pushed again
    await until(lambda: task.state is TaskState.READY, "ready again")
    assert len(hub.driver.got(TaskSpecPush)) == pushes + 1 and task.error is None


# -- media named by hash ----------------------------------------------------------------

MEDIA = b"media bytes" * 100


async def with_media(hub: Hub, tmp_path: Path) -> str:
    """The hub holding ``MEDIA``; its hash."""
    import hashlib

    from backend.hub.media import MediaStore

    async def body() -> AsyncIterator[bytes]:
        yield MEDIA

    media = MediaStore(hub.store, hub.events, tmp_path)
    await media.load()
    hub.tasks.media = media
    sha256 = hashlib.sha256(MEDIA).hexdigest()
    await media.put(sha256, body())
    return sha256


def media_spec(sha256: str) -> TaskSpec:
    data = copy.deepcopy(SPEC)
    data["tracks"][0]["source"] = {"type": "file", "sha256": sha256}
    return TaskSpec.model_validate(data)


async def test_reserving_media_the_hub_does_not_hold_is_422_saying_how_to_upload_it(
        hub: Hub, tmp_path: Path) -> None:
    await with_media(hub, tmp_path)
    await hub.engine.connect()
    await hub.driver.connect()
    missing = "ab" * 32
    await refused(422, hub.tasks.reserve(media_spec(missing), None),
                  f"tracks.0.source.sha256: the hub holds no media {missing}; upload the "
                  f"file first with PUT /api/v1/media/{missing}")
    assert await hub.event_types() == []


async def test_tasks_not_released_are_the_users_of_the_media_they_name(
        hub: Hub, tmp_path: Path) -> None:
    sha256 = await with_media(hub, tmp_path)
    await hub.engine.connect()
    await hub.driver.connect()
    task = await hub.tasks.reserve(media_spec(sha256), None)
    assert hub.tasks.media_users() == {sha256: [task.id]}
    assert hub.tasks.media is not None and not hub.tasks.media.claimed(sha256)
    await until(lambda: task.state is TaskState.READY, "the task ready")
    await hub.tasks.release(task.id)
    assert hub.tasks.media_users() == {}


async def test_the_engine_gets_longer_to_answer_a_spec_naming_media_by_its_size(
        hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import backend.hub.tasks.service as service

    sha256 = await with_media(hub, tmp_path)
    # MEDIA's 1100 bytes take 0.3 s at this rate: the engine has 0.2 + 0.3 s to answer.
    monkeypatch.setattr(service, "MEDIA_FETCH_BYTES_PER_S", len(MEDIA) / 0.3)
    answered: list[float] = []

    def slow(message: Message) -> Message | None:  # accepts after a 0.35 s "fetch"
        if isinstance(message, TaskSpecPush):
            answered.append(asyncio.get_running_loop().time() + 0.35)
        return None

    hub.engine.answer = slow
    await hub.engine.connect()
    await hub.driver.connect()
    task = await hub.tasks.reserve(media_spec(sha256), None)
    loop = asyncio.get_running_loop()
    await until(lambda: bool(answered) and loop.time() >= answered[0], "the fetch", 2.0)
    assert task.state is TaskState.PENDING  # 0.35 s in: past the bare 0.2 s, still waiting
    await hub.engine.report(TaskAccepted(task_id=task.id))
    await until(lambda: task.state is TaskState.READY, "the task ready")

    await hub.tasks.release(task.id)
    hub.engine.answer = silent  # an engine that never answers still times out, and says why
    other = await hub.tasks.reserve(media_spec(sha256), None)
    await until(lambda: other.state is TaskState.FAILED, "the push timed out", 2.0)
    assert other.error is not None and "did not answer within 0.5 s (0.2 s, plus 0.3 s to " \
        f"fetch {len(MEDIA)} bytes of media" in other.error
