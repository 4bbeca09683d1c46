"""A render job's process reads the media its spec names by hash where the runner's
``media.json`` says they are cached."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from backend.audio import Graph, TaskSpec, render
from backend.runner import render_job


def _spec(source: dict[str, Any]) -> dict[str, Any]:
    return {"sample_rate": 48000, "block_size": 1024,
            "tracks": [{"id": "a", "source": {"type": "file", **source}, "gain_db": -2}],
            "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"}}


def _job(job_dir: Path, spec: dict[str, Any], media: dict[str, str] | None) -> None:
    job_dir.mkdir()
    offer = {"kind": "render", "media_dir": str(job_dir / "nowhere"),
             "payload": {"spec": spec, "format": "float32", "name": "out.wav"}}
    (job_dir / "payload.json").write_text(json.dumps(offer))
    if media is not None:
        (job_dir / "media.json").write_text(json.dumps({"paths": media}))


def test_sources_named_by_hash_are_read_from_the_runners_cache(tmp_path: Path) -> None:
    cached = tmp_path / "media-cache" / "x"
    cached.parent.mkdir()
    sf.write(cached, np.linspace(-0.5, 0.5, 9600).reshape(-1, 2), 48000, subtype="FLOAT",
             format="WAV")
    sha = hashlib.sha256(cached.read_bytes()).hexdigest()
    _job(tmp_path / "job", _spec({"sha256": sha}), {sha: str(cached)})
    assert render_job.main([str(tmp_path / "job")]) == 0
    with Graph(TaskSpec.model_validate(_spec({"path": str(cached)}))) as graph:
        render(graph, tmp_path / "expected.wav", "float32")
    produced = (tmp_path / "job" / "artifacts" / "out.wav").read_bytes()
    assert produced == (tmp_path / "expected.wav").read_bytes()


def test_without_media_json_the_job_fails_naming_the_media(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _job(tmp_path / "job", _spec({"sha256": "ab" * 32}), None)
    assert render_job.main([str(tmp_path / "job")]) == 1
    assert f"media {'ab' * 32} was not fetched" in capsys.readouterr().err
