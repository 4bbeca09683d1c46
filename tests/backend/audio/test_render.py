"""Offline render: deterministic files, cancel that leaves nothing, progress, segments."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from backend.audio import Graph, InstanceError, TaskSpec, render
from tests.backend.audio.audio_helpers import spec_dict, tone


def busy_spec(tmp_path: Path, seconds: float = 1.0, **extra: Any) -> TaskSpec:
    rng = np.random.default_rng(9)
    soundfile.write(tmp_path / "in44.wav", rng.uniform(-0.3, 0.3, (44100, 2)), 44100,
                    subtype="PCM_24")
    return TaskSpec.model_validate(spec_dict(
        [{"id": "file", "source": {"type": "file", "path": str(tmp_path / "in44.wav"),
                                   "loop": True}, "chain": ["eq", "comp"]},
         {"id": "noise", "source": {"type": "noise", "level_dbfs": -12, "seed": 3,
                                    "duration_s": seconds}, "chain": ["sat"], "pan": 0.4},
         {"id": "tone", "source": tone(220, -6, seconds), "chain": ["trim"], "pan": -0.6}],
        {"eq": {"model": "eq", "params": {"bands": [{"type": "high_shelf", "freq_hz": 5000,
                                                    "gain_db": 4}]}},
         "comp": {"model": "compressor", "params": {"threshold_db": -24, "ratio": 6}},
         "sat": {"model": "saturator", "params": {"drive_db": 18, "mix": 0.7}},
         "trim": {"model": "gain", "params": {"gain_db": 4}}},
        duration_s=seconds, block_size=1000, **extra))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["wav24", "float32"])
def test_two_renders_of_a_spec_are_bit_identical(tmp_path: Path, fmt: str) -> None:
    spec = busy_spec(tmp_path)
    hashes = []
    for name in ("one.wav", "two.wav"):
        with Graph(spec) as graph:
            result = render(graph, tmp_path / name, fmt)  # type: ignore[arg-type]
        assert result.status == "completed" and result.path == tmp_path / name
        assert result.frames == 48000 and result.speed > 1
        hashes.append(sha(tmp_path / name))
    assert hashes[0] == hashes[1]
    info = soundfile.info(str(tmp_path / "one.wav"))
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, 48000)
    assert info.subtype == {"wav24": "PCM_24", "float32": "FLOAT"}[fmt]


def test_render_matches_the_blocks_the_graph_plays(tmp_path: Path) -> None:
    spec = busy_spec(tmp_path, 0.5)
    with Graph(spec) as graph:
        render(graph, tmp_path / "r.wav", "float32")
    with Graph(spec) as graph:
        blocks = []
        while (block := graph.next_block()) is not None:
            blocks.append(block)
        played = np.concatenate(blocks)
    stored, _ = soundfile.read(tmp_path / "r.wav", dtype="float64")
    assert np.array_equal(stored, played.astype(np.float32).astype(np.float64))


def test_cancel_stops_and_deletes_the_partial_file(tmp_path: Path) -> None:
    spec = busy_spec(tmp_path, 5.0)
    target = tmp_path / "out.wav"
    target.write_bytes(b"an earlier render")
    cancel = threading.Event()
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        if fraction > 0.2:
            cancel.set()
            assert (tmp_path / ".out.wav.partial").exists()  # it was really writing

    with Graph(spec) as graph:
        result = render(graph, target, "wav24", progress=progress, cancel=cancel)
    assert result.status == "cancelled" and result.path is None
    assert 0 < result.frames < 5 * 48000
    assert target.read_bytes() == b"an earlier render"  # not clobbered
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in44.wav", "out.wav"]


def test_progress_rises_to_one(tmp_path: Path) -> None:
    seen: list[float] = []
    with Graph(busy_spec(tmp_path, 1.0)) as graph:
        render(graph, tmp_path / "p.wav", progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 20


def test_a_failing_instance_fails_the_render_and_leaves_no_file(tmp_path: Path) -> None:
    class Failing:
        params: dict[str, Any] = {}

        def __init__(self) -> None:
            self.blocks = 0

        def process(self, block: np.ndarray) -> np.ndarray:
            self.blocks += 1
            if self.blocks > 5:
                raise TimeoutError("no answer from driver rack-a in 2.0 s")
            return block.astype(np.float64)

        def set_params(self, params: Any) -> None: ...

        def report(self) -> dict[str, float]:
            return {}

        def reset(self) -> None: ...

    spec = busy_spec(tmp_path)
    with Graph(spec, instance_factory=lambda i, s: Failing() if i == "comp" else None) as graph, \
            pytest.raises(InstanceError, match="'comp' failed: TimeoutError"):
        render(graph, tmp_path / "x.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in44.wav"]


def test_a_segment_renders_only_that_part(tmp_path: Path) -> None:
    spec = TaskSpec.model_validate(spec_dict(
        [{"id": "n", "source": {"type": "noise", "level_dbfs": -10, "seed": 1,
                                "duration_s": 2.0}},
         {"id": "t", "source": tone(300, -10, 2.0), "chain": ["sat"]}],
        {"sat": {"model": "saturator"}}))  # memoryless chain: segment == slice of the whole
    with Graph(spec) as graph:
        render(graph, tmp_path / "all.wav", "float32")
        result = render(graph, tmp_path / "seg.wav", "float32", segment=(0.5, 1.25))
    assert result.frames == 36000
    whole, _ = soundfile.read(tmp_path / "all.wav")
    part, _ = soundfile.read(tmp_path / "seg.wav")
    assert np.array_equal(part, whole[24000:60000])
    with Graph(spec) as graph, pytest.raises(ValueError, match="starts after the task ends"):
        render(graph, tmp_path / "late.wav", segment=(5.0, 6.0))


def test_wav24_clips_overs_and_float32_keeps_them(tmp_path: Path) -> None:
    spec = TaskSpec.model_validate(spec_dict(
        [{"id": "hot", "source": tone(1000, 0.0, 0.1), "gain_db": 6, "pan": -1}]))
    with Graph(spec) as graph:
        fixed = render(graph, tmp_path / "a.wav", "wav24")
        floating = render(graph, tmp_path / "b.wav", "float32")
    assert fixed.clips[0] > 0 and fixed.peak_dbfs[0] == pytest.approx(6.0, abs=0.01)
    assert soundfile.read(tmp_path / "a.wav")[0].max() <= 1.0
    assert soundfile.read(tmp_path / "b.wav")[0].max() == pytest.approx(10 ** (6 / 20), rel=1e-6)
    assert floating.clips == fixed.clips


def test_rendering_a_long_file_keeps_memory_flat(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "long.wav"
    seconds = 30
    soundfile.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, (48000 * seconds, 2)),
                    48000, subtype="PCM_16")
    spec = TaskSpec.model_validate(spec_dict(
        [{"id": "f", "source": {"type": "file", "path": str(path)}, "chain": ["eq"]}],
        {"eq": {"model": "eq", "params": {"bands": [{"gain_db": 3}]}}}, block_size=4096))
    whole_file_as_float = 48000 * seconds * 2 * 8  # 23 MB
    tracemalloc.start()
    try:
        with Graph(spec) as graph:
            render(graph, tmp_path / "out.wav")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < whole_file_as_float / 8, f"peak {peak / 1e6:.1f} MB"
