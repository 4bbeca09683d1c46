"""The engine with specs that name media by hash: fetched into its cache before it
accepts, pinned while the task is held, refused with the reason when the hub has none.
A fake session and a fake hub client: no sockets."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from backend.engine import engine as engine_module
from backend.engine.engine import Engine
from backend.protocol import Message
from backend.protocol.tasks import TaskAccepted, TaskDrop, TaskRefused, TaskSpecPush


class FakeSession:
    def __init__(self, data_dir: Path) -> None:
        self.handlers: dict[str, Any] = {}
        self.on_binary: Any = None
        self.config: dict[str, Any] = {}
        self.settings = SimpleNamespace(name="engine-1", data_dir=data_dir,
                                        hub_url="http://hub.invalid")
        self.trust = None
        self.sent: list[Message] = []

    async def send(self, message: Message) -> bool:
        self.sent.append(message)
        return True


class FakeClient:
    """The two HubClient calls the cache makes, over files in a folder."""

    def __init__(self, media: dict[str, Path]) -> None:
        self.media = media
        self.fetched: list[str] = []

    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(self, *exc: object) -> None: ...

    async def media_info(self, sha256: str) -> dict[str, Any] | None:
        path = self.media.get(sha256)
        return None if path is None else {"sha256": sha256, "bytes": _size(path)}

    async def fetch_media(self, sha256: str, dest: Path) -> int:
        self.fetched.append(sha256)
        data = await asyncio.to_thread(self.media[sha256].read_bytes)
        await asyncio.to_thread(dest.write_bytes, data)
        return len(data)


def _size(path: Path) -> int:
    return os.stat(path).st_size


def _wav(path: Path) -> str:
    sf.write(path, np.zeros((4800, 2)), 48000, subtype="PCM_16")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _push(task_id: str, source: dict[str, Any]) -> TaskSpecPush:
    return TaskSpecPush(task_id=task_id, instances=[], spec={
        "sample_rate": 48000, "block_size": 1024,
        "tracks": [{"id": "a", "source": {"type": "file", **source}}],
        "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"}})


async def _answer(session: FakeSession, engine: Engine, task_id: str) -> Message:
    job = engine.accepting.get(task_id)
    if job is not None:
        await job
    return session.sent[-1]


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeClient, str]:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    sha = _wav(uploads / "a.wav")
    client = FakeClient({sha: uploads / "a.wav"})
    monkeypatch.setattr(engine_module, "agent_hub_client", lambda session: client)
    return client, sha


async def test_media_are_fetched_pinned_and_the_spec_kept_with_their_paths(
        tmp_path: Path, hub: tuple[FakeClient, str]) -> None:
    client, sha = hub
    session = FakeSession(tmp_path / "engine")
    engine = Engine(session, tmp_path / "engine")  # type: ignore[arg-type]
    await engine._on_spec(_push("t_1", {"sha256": sha}))
    assert isinstance(await _answer(session, engine, "t_1"), TaskAccepted)
    cached = tmp_path / "engine" / "media-cache" / sha
    source = engine.specs["t_1"].tracks[0].source
    assert getattr(source, "path", None) == str(cached)
    assert engine.media.policy.pinned() == {sha}

    await engine._on_spec(_push("t_2", {"sha256": sha}))  # the same media: no new fetch
    assert isinstance(await _answer(session, engine, "t_2"), TaskAccepted)
    assert client.fetched == [sha]
    await engine._on_drop(TaskDrop(task_id="t_1"))
    assert engine.media.policy.pinned() == {sha}  # t_2 still holds it
    await engine._on_drop(TaskDrop(task_id="t_2"))
    assert engine.media.policy.pinned() == set()
    assert cached.exists()  # unpinned, not deleted: within the limit


async def test_media_the_hub_lacks_refuse_the_task_with_the_reason(
        tmp_path: Path, hub: tuple[FakeClient, str]) -> None:
    session = FakeSession(tmp_path / "engine")
    engine = Engine(session, tmp_path / "engine")  # type: ignore[arg-type]
    await engine._on_spec(_push("t_1", {"sha256": "3fa4" + "0" * 60}))
    refused = await _answer(session, engine, "t_1")
    assert isinstance(refused, TaskRefused)
    assert refused.reason.startswith("media 3fa400000000… could not be fetched from the hub: "
                                     "404")
    assert "t_1" not in engine.specs and engine.media.policy.pinned() == set()


async def test_a_cache_limit_below_the_file_refuses_naming_the_key(
        tmp_path: Path, hub: tuple[FakeClient, str]) -> None:
    _, sha = hub
    session = FakeSession(tmp_path / "engine")
    session.config = {"media_cache_mb": 0.001}
    engine = Engine(session, tmp_path / "engine")  # type: ignore[arg-type]
    await engine._on_spec(_push("t_1", {"sha256": sha}))
    refused = await _answer(session, engine, "t_1")
    assert isinstance(refused, TaskRefused) and "raise media_cache_mb" in refused.reason
