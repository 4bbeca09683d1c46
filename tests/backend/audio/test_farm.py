"""A render split into parts that each render whole chunks, summed by one assembly, is
bit-identical to the one-process render: the summation tree is the same."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from backend.audio import Graph, TaskSpec, offline_block, render
from backend.audio.farm import FRAME_BYTES, ChunkStreams, assemble, chunk_file, render_part
from backend.audio.graph import CHUNK_GROUPS, GROUP
from tests.backend.audio.audio_helpers import PARAMS, spec_dict

TRACKS = GROUP * CHUNK_GROUPS * 2 + 5  # three chunks, the last one short


def many_tracks(tmp_path: Path, seconds: float = 0.6) -> TaskSpec:
    """Files (one resampled) and generators through every model, so that no chunk's sum
    could come out right by accident."""
    rng = np.random.default_rng(11)
    tracks: list[dict[str, Any]] = []
    instances: dict[str, Any] = {}
    models = sorted(PARAMS)
    for i in range(TRACKS):
        if i % 3 == 0:
            rate = 44100 if i % 2 else 48000
            path = tmp_path / f"in{i}.wav"
            soundfile.write(path, rng.uniform(-0.4, 0.4, (int(rate * seconds), 2)), rate,
                            subtype="PCM_24")
            source: dict[str, Any] = {"type": "file", "path": str(path)}
        elif i % 3 == 1:
            source = {"type": "noise", "level_dbfs": -20, "seed": i, "duration_s": seconds}
        else:
            source = {"type": "tone", "freq_hz": 100 + 7 * i, "level_dbfs": -12,
                      "duration_s": seconds}
        track: dict[str, Any] = {"id": f"t{i}", "source": source, "gain_db": -9.0,
                                 "pan": -1 + 2 * i / TRACKS}
        if i % 2:
            model = models[i % len(models)]
            track["chain"] = [f"i{i}"]
            instances[f"i{i}"] = {"model": model, "params": PARAMS[model]}
        tracks.append(track)
    return TaskSpec.model_validate(spec_dict(tracks, instances, block_size=512))


def drain(next_block: Callable[[], np.ndarray | None]) -> np.ndarray:
    blocks = []
    while (block := next_block()) is not None:
        blocks.append(block.copy())
    return np.concatenate(blocks)


@pytest.mark.parametrize("split", [[[0], [1], [2]], [[2, 0], [1]], [[0, 1, 2]]])
def test_parts_summed_in_chunk_order_are_the_one_process_render(
        tmp_path: Path, split: list[list[int]]) -> None:
    spec = many_tracks(tmp_path)
    with Graph(spec) as graph:
        assert len(graph.chunks) == 3
        render(graph, tmp_path / "one.wav", "float32")
    for number, chunks in enumerate(split):
        with Graph(spec, block_frames=offline_block(spec)) as part:
            result = render_part(part, chunks, tmp_path / f"part{number}")
        assert result.status == "completed" and result.files is not None
        assert sorted(result.files) == sorted(chunks)
        for path in result.files.values():
            assert path.stat().st_size == part.total_frames * FRAME_BYTES
    files = [chunk_file(tmp_path / f"part{n}", c)
             for c in range(3) for n, chunks in enumerate(split) if c in chunks]
    assembled = assemble(files, tmp_path / "farm.wav", 48000, 8192, "float32")
    assert assembled.status == "completed"
    assert (tmp_path / "farm.wav").read_bytes() == (tmp_path / "one.wav").read_bytes()


def test_a_segment_split_into_parts_is_the_segment_render(tmp_path: Path) -> None:
    spec = many_tracks(tmp_path)
    segment = (0.1234, 0.5)
    with Graph(spec) as graph:
        render(graph, tmp_path / "one.wav", "wav24", segment=segment)
    for chunk in range(3):
        with Graph(spec) as part:
            render_part(part, [chunk], tmp_path / "parts", segment=segment)
    assemble([chunk_file(tmp_path / "parts", c) for c in range(3)], tmp_path / "farm.wav",
             48000, 4096)
    assert (tmp_path / "farm.wav").read_bytes() == (tmp_path / "one.wav").read_bytes()


def test_a_cancelled_part_leaves_no_file(tmp_path: Path) -> None:
    spec = many_tracks(tmp_path)
    cancel = threading.Event()
    with Graph(spec) as part:
        result = render_part(part, [1], tmp_path / "parts",
                             progress=lambda _fraction: cancel.set(), cancel=cancel)
    assert result.status == "cancelled" and result.files is None
    assert list((tmp_path / "parts").iterdir()) == []


def test_a_part_refuses_an_unknown_chunk_and_chunks_of_unequal_length(tmp_path: Path) -> None:
    spec = many_tracks(tmp_path)
    with Graph(spec) as part, pytest.raises(ValueError, match="no chunk 7"):
        render_part(part, [7], tmp_path / "parts")
    (tmp_path / "a.f64").write_bytes(bytes(32))
    (tmp_path / "b.f64").write_bytes(bytes(48))
    with pytest.raises(ValueError, match="differ in length"):
        assemble([tmp_path / "a.f64", tmp_path / "b.f64"], tmp_path / "x.wav", 48000, 1024)


def test_the_assembled_bus_is_the_graph_bus_bit_for_bit_in_float64(tmp_path: Path) -> None:
    """Compared before any rounding to a file format: the chunk order matters here (summed
    in another order, a third of these samples differ in the last bits)."""
    spec = many_tracks(tmp_path)
    with Graph(spec) as graph:
        expected = drain(graph.next_block)
    for chunk in range(3):
        with Graph(spec) as part:
            render_part(part, [chunk], tmp_path / "parts")
    streams = ChunkStreams([chunk_file(tmp_path / "parts", c) for c in range(3)], 48000, 1000)
    try:
        got = drain(streams.next_block)
    finally:
        streams.close()
    assert np.array_equal(got, expected)
    chunks = [np.fromfile(chunk_file(tmp_path / "parts", c)) for c in range(3)]
    assert not np.array_equal((chunks[2] + chunks[1]) + chunks[0], expected.reshape(-1))
