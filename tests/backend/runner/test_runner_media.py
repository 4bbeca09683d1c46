"""The runner service fetches a render job's media before the job starts: ``media.json``
for the job's process, the files pinned while it runs, the reason when they cannot be had.
A fake session and a fake hub client: no sockets, no shim."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from backend.runner import runner as runner_module
from backend.runner.journal import Journal
from backend.runner.runner import ActiveJob, Runner

SHA = "5e" * 32


class FakeClient:
    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(self, *exc: object) -> None: ...

    async def media_info(self, sha256: str) -> dict[str, Any] | None:
        return {"sha256": sha256, "bytes": 4} if sha256 == SHA else None

    async def fetch_media(self, sha256: str, dest: Path) -> int:
        await asyncio.to_thread(dest.write_bytes, b"RIFF")
        return 4


def _runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    monkeypatch.setattr(runner_module, "agent_hub_client", lambda session: FakeClient())
    session = SimpleNamespace(
        settings=SimpleNamespace(data_dir=tmp_path, static_config={}, hub_url="http://x"),
        handlers={}, on_config_hooks=[], config={}, trust=None)
    return Runner(session)  # type: ignore[arg-type]


def _job(runner: Runner, job_id: str, sha: str) -> ActiveJob:
    spec = {"sample_rate": 48000, "block_size": 1024,
            "tracks": [{"id": "a", "source": {"type": "file", "sha256": sha}}],
            "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"}}
    offer = {"kind": "render", "payload": {"spec": spec}, "needs": {}}
    return ActiveJob(Journal.create(runner.jobs_root, job_id, offer), offer)


async def test_a_render_jobs_media_are_cached_pinned_and_written_for_its_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _runner(tmp_path, monkeypatch)
    job = _job(runner, "j_1", SHA)
    assert await runner._fetch_media(job) is None
    cached = tmp_path / "media-cache" / SHA
    assert json.loads((job.journal.dir / "media.json").read_text()) == {
        "paths": {SHA: str(cached)}}
    assert runner.media.policy.pinned() == {SHA}

    # A restart while the job runs: its files stay pinned (its supervision, which would
    # watch the shim, and the hardware inventory are left out here).
    monkeypatch.setattr(Runner, "_supervise_soon", lambda self, job: None)
    monkeypatch.setattr(runner_module.inventory, "collect", lambda data_dir: {})
    restarted = _runner(tmp_path, monkeypatch)
    await restarted.start()
    try:
        assert restarted.media.policy.pinned() == {SHA}
    finally:
        for task in list(restarted._tasks):
            task.cancel()
        if restarted._heartbeat is not None:
            restarted._heartbeat.cancel()


async def test_media_the_hub_lacks_fail_the_job_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _runner(tmp_path, monkeypatch)
    job = _job(runner, "j_2", "ab" * 32)
    reason = await runner._fetch_media(job)
    assert reason is not None and reason.startswith(
        "media abababababab… could not be fetched from the hub: 404")
    assert not (job.journal.dir / "media.json").exists()
    assert runner.media.policy.pinned() == set()


async def test_a_job_stopped_while_its_media_are_fetched_does_not_wait_for_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started, never = asyncio.Event(), asyncio.Event()

    class SlowClient(FakeClient):
        async def fetch_media(self, sha256: str, dest: Path) -> int:
            started.set()
            await never.wait()  # gigabytes, on a slow link
            return 0

    runner = _runner(tmp_path, monkeypatch)
    monkeypatch.setattr(runner_module, "agent_hub_client", lambda session: SlowClient())
    job = _job(runner, "j_3", SHA)
    fetching = asyncio.create_task(runner._fetch_or_stop(job))
    await asyncio.wait_for(started.wait(), 5)
    assert runner.media.policy.pinned() == {SHA}
    runner._stop_job(job, "cancel", "cancelled by the operator")
    assert await asyncio.wait_for(fetching, 5) is None  # at once: the stop is read next
    assert json.loads((job.journal.dir / "stopping.json").read_text())["why"] == "cancel"
    assert runner.media.policy.pinned() == set()
    assert not (job.journal.dir / "media.json").exists()
