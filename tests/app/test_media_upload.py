"""``controlroom task reserve``'s upload of a spec's local files, with a fake hub."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.media_upload import local_file, upload_local_files
from backend.audio import TaskSpec, media_hashes
from backend.client import file_sha256


def _spec(*paths: str) -> TaskSpec:
    return TaskSpec.model_validate({
        "sample_rate": 48000, "block_size": 1024,
        "tracks": [{"id": f"t{i}", "source": {"type": "file", "path": p, "loop": i == 0}}
                   for i, p in enumerate(paths)],
        "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"}})


class FakeHub:
    def __init__(self, held: set[str] | None = None) -> None:
        self.held = held or set()
        self.uploads: list[Path] = []

    async def upload_media(self, path: Path, sha256: str | None = None,
                           sending: Callable[[int], object] | None = None,
                           ) -> dict[str, Any]:
        assert sha256 == file_sha256(path)
        self.uploads.append(path)
        new = sha256 not in self.held
        self.held.add(sha256)
        return {"sha256": sha256, "bytes": _size(path), "uploaded": new}


def _size(path: Path) -> int:
    return path.stat().st_size


def test_a_relative_path_is_looked_for_next_to_the_spec_then_in_the_current_dir(
        tmp_path: Path) -> None:
    spec_dir, cwd = tmp_path / "spec", tmp_path / "cwd"
    for folder in (spec_dir, cwd):
        folder.mkdir()
        (folder / "both.wav").write_bytes(b"x")
    (cwd / "cwd-only.wav").write_bytes(b"y")
    assert local_file("both.wav", spec_dir, cwd) == spec_dir / "both.wav"
    assert local_file("cwd-only.wav", spec_dir, cwd) == cwd / "cwd-only.wav"
    assert local_file(str(cwd / "both.wav"), spec_dir, cwd) == cwd / "both.wav"
    assert local_file("elsewhere.wav", spec_dir, cwd) is None
    assert local_file(".", spec_dir, cwd) is None  # a folder is not a file


async def test_local_files_are_uploaded_once_and_named_by_hash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "drums.wav").write_bytes(b"d" * 1000)
    (tmp_path / "bass.wav").write_bytes(b"b" * 2_500_000)
    bass_sha = file_sha256(tmp_path / "bass.wav")
    hub = FakeHub(held={bass_sha})
    spec = _spec("drums.wav", "bass.wav", "./drums.wav", "on-the-engine.wav")
    sent = await upload_local_files(hub, spec, tmp_path, cwd=tmp_path / "nowhere")
    assert [p.name for p in hub.uploads] == ["drums.wav", "bass.wav"]  # each file once
    sources = [t.source for t in sent.tracks]
    drums_sha = hashlib.sha256(b"d" * 1000).hexdigest()
    assert [getattr(s, "sha256", None) for s in sources] == [drums_sha, bass_sha, drums_sha,
                                                             None]
    assert getattr(sources[0], "loop", None) is True  # the rest of the source is kept
    assert getattr(sources[3], "path", None) == "on-the-engine.wav"
    assert media_hashes(sent) == [drums_sha, bass_sha]
    err = capsys.readouterr().err.splitlines()
    assert err == [f"uploaded drums.wav (0.0 MB) as {drums_sha[:6]}…",
                   f"bass.wav is already on the hub ({bass_sha[:6]}…)"]
