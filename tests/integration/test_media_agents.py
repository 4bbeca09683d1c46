"""Media that travel with the task, end to end: a real hub, a real engine and a real
runner fetch a file named by its SHA-256 into their caches and render exactly what the
audio core renders from the file itself; ``controlroom task reserve`` uploads a spec's
local files."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from processes import AgentProcess, HubProcess, wait_until
from runner_farm import Farm, controlroom
from task_calls import TaskCalls

from backend.audio import Graph, TaskSpec, render
from backend.client import HubClient


def _wav(path: Path, seed: int) -> str:
    """A 1.5 s stereo 44.1 kHz 24-bit file (resampled to the task's 48 kHz): its hash."""
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, (66150, 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, noise, 44100, subtype="PCM_24")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spec(source: dict[str, Any]) -> dict[str, Any]:
    return {"sample_rate": 48000, "block_size": 1024,
            "tracks": [{"id": "drums", "source": {"type": "file", **source},
                        "chain": ["eq1"], "gain_db": -3}],
            "instances": {"eq1": {"model": "eq", "params": {"bands": [
                {"type": "peaking", "freq_hz": 1000, "gain_db": 4}]}}},
            "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"}}


def _upload(hub: HubProcess, path: Path) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with HubClient(hub.url, hub.token) as client:
            return await client.upload_media(path)

    return asyncio.run(go())


def test_an_engine_and_a_runner_fetch_media_by_hash_once_and_render_the_files_bytes(
        hub: HubProcess, spawn_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    farm = Farm(hub, spawn_agent, tmp_path)
    engine = spawn_agent(hub, "engine-1", "engine")
    runner = farm.runner("r1")
    wav = tmp_path / "uploads" / "drums.wav"  # in no agent's media_dir
    sha = _wav(wav, seed=1)
    assert _upload(hub, wav)["uploaded"] is True
    by_path = tmp_path / "expected.wav"
    with Graph(TaskSpec.model_validate(_spec({"path": str(wav)}))) as graph:
        render(graph, by_path, "float32")
    expected = by_path.read_bytes()
    spec = _spec({"sha256": sha})
    hub.wait_state("engine-1", "up")

    calls = TaskCalls(hub)
    task = calls.reserve(spec)
    assert calls.render(task["id"], "float32") == expected
    cached = engine.data_dir / "media-cache" / sha
    assert cached.read_bytes() == wav.read_bytes()
    inode = cached.stat().st_ino
    calls.call("POST", f"/tasks/{task['id']}/release").raise_for_status()

    again = calls.reserve(copy.deepcopy(spec))  # the same media: served from the cache
    assert calls.render(again["id"], "float32") == expected
    assert cached.stat().st_ino == inode
    assert engine.output().count("fetched media") == 1

    farm.ready("r1")
    job_id = farm.submit(kind="render", payload={"spec": spec, "format": "float32",
                                                 "name": "mix.wav"})
    done = farm.wait(job_id, "succeeded", timeout=60)
    assert done["artifacts"] == ["mix.wav"]
    assert farm.call("GET", f"/jobs/{job_id}/artifacts/mix.wav").content == expected
    assert (runner.data_dir / "media-cache" / sha).stat().st_size == wav.stat().st_size

    missing = farm.call("POST", "/jobs", json={"kind": "render", "payload": {
        "spec": _spec({"sha256": "0" * 64})}})
    assert missing.status_code == 422 and f"no media {'0' * 64}" in missing.text

    waiting = farm.submit(kind="render", needs={"cpus": 0, "labels": ["nowhere"]},
                          payload={"spec": spec})  # no runner has the label: stays queued
    in_use = farm.call("DELETE", f"/media/{sha}")
    assert in_use.status_code == 409, in_use.text
    assert f"render job {waiting}" in in_use.json()["detail"]
    assert f"task {again['id']}" in in_use.json()["detail"]
    farm.call("POST", f"/jobs/{waiting}/cancel").raise_for_status()
    calls.call("POST", f"/tasks/{again['id']}/release").raise_for_status()
    assert farm.call("DELETE", f"/media/{sha}").status_code == 204


def test_task_reserve_uploads_a_specs_local_files(
        hub: HubProcess, spawn_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    spawn_agent(hub, "engine-1", "engine")
    folder = tmp_path / "session"
    sha = _wav(folder / "audio" / "bass.wav", seed=2)
    spec_file = folder / "mix.json"
    spec_file.write_text(json.dumps(_spec({"path": "audio/bass.wav"})))
    hub.wait_state("engine-1", "up")

    first = controlroom("--data-dir", str(hub.data_dir), "task", "reserve", str(spec_file))
    assert first.returncode == 0, first.stderr
    assert f"uploaded bass.wav (0.4 MB) as {sha[:6]}…" in first.stderr
    task = TaskCalls(hub).task(first.stdout.strip())
    assert task["state"] == "ready"
    source = task["spec"]["tracks"][0]["source"]
    assert source["sha256"] == sha and source.get("path") is None

    kept = controlroom("--data-dir", str(hub.data_dir), "task", "reserve", "--keep-paths",
                       str(spec_file))  # the engine cannot find it in its media_dir
    assert kept.returncode == 1 and "bass.wav" in kept.stderr, kept.stderr
    second = controlroom("--data-dir", str(hub.data_dir), "task", "reserve", str(spec_file))
    assert second.returncode == 0, second.stderr
    assert f"bass.wav is already on the hub ({sha[:6]}…)" in second.stderr
    wait_until(lambda: TaskCalls(hub).task(second.stdout.strip())["state"] == "ready", 5,
               "the second task to be ready")
