"""Tracks in other processes: the same samples, bit for bit, as one process."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from backend.audio.graph import Graph
from backend.audio.render import render
from backend.audio.spec import TaskSpec
from backend.audio.workers import TrackWorkers

WINDOW = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}


def spec(tracks: int = 6) -> TaskSpec:
    data: dict[str, Any] = {"sample_rate": 48000, "block_size": 2048, "window": WINDOW,
                            "tracks": [], "instances": {}}
    for i in range(tracks):
        data["tracks"].append({
            "id": f"t{i}", "pan": -1 + 2 * i / (tracks - 1), "chain": [f"eq{i}", f"c{i}"],
            "source": {"type": "noise", "level_dbfs": -20, "seed": i, "duration_s": 1.5}})
        data["instances"][f"eq{i}"] = {"model": "eq", "params": {"bands": [
            {"type": "peaking", "freq_hz": 300 + 200 * i, "gain_db": 4, "q": 1}]}}
        data["instances"][f"c{i}"] = {"model": "compressor",
                                      "params": {"threshold_db": -30, "ratio": 4}}
    return TaskSpec.model_validate(data)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_render_in_three_processes_is_bit_identical_to_one(tmp_path: Path) -> None:
    one, three = tmp_path / "one.wav", tmp_path / "three.wav"
    with Graph(spec()) as graph:
        render(graph, one, "float32")
    with Graph(spec(), processes=3, workers=TrackWorkers) as graph:
        assert graph._workers is not None  # really split
        render(graph, three, "float32")
        assert set(graph.reports()) >= {"c0", "c5"}  # reports from every process
    assert digest(one) == digest(three)


def test_parameter_changes_and_seeks_reach_the_workers(tmp_path: Path) -> None:
    blocks: dict[int, list[np.ndarray]] = {}
    for processes in (1, 2):
        out = []
        with Graph(spec(), processes=processes, workers=TrackWorkers) as graph:
            out.append(graph.next_block())
            for i in range(6):
                graph.set_instance_params(f"c{i}", {"ratio": 10})
            out.append(graph.next_block())
            graph.seek(48000)
            out.append(graph.next_block())
        blocks[processes] = [b for b in out if b is not None]
    assert len(blocks[1]) == 3
    for a, b in zip(blocks[1], blocks[2], strict=True):
        assert np.array_equal(a, b)


def test_groups_depend_on_the_track_count_only() -> None:
    """The summation order is fixed by the groups, so they must not follow the process
    count: at most 4 tracks per group, at least 4 groups when there are tracks enough."""
    from backend.audio.graph import Graph as G

    for tracks, sizes in ((3, [1, 1, 1]), (6, [2, 2, 2]), (32, [4] * 8), (20, [4] * 5),
                          (13, [4, 4, 4, 1])):
        with G(spec(tracks)) as graph:
            assert [len(g) for g in graph._groups] == sizes


def test_a_split_render_with_many_tracks_is_bit_identical(tmp_path: Path) -> None:
    one, two = tmp_path / "one.wav", tmp_path / "two.wav"
    with Graph(spec(20)) as graph:
        render(graph, one, "float32")
    with Graph(spec(20), processes=2, workers=TrackWorkers) as graph:
        assert graph._workers is not None
        # two of the five groups stay here: this process also sums, meters and writes
        assert len(graph.rows) == 8
        render(graph, two, "float32")
    assert digest(one) == digest(two)


def test_a_cancelled_render_then_a_segment_is_bit_identical(tmp_path: Path) -> None:
    """A cancel leaves a block the workers mixed ahead; the next render's seek collects it
    before moving, so the segment is that of one process."""
    import threading

    digests = []
    for processes in (1, 2):
        with Graph(spec(), processes=processes, workers=TrackWorkers) as graph:
            cancel = threading.Event()

            def cut(fraction: float, cancel: threading.Event = cancel) -> None:
                if fraction > 0.3:
                    cancel.set()

            result = render(graph, tmp_path / "cut.wav", "float32", progress=cut, cancel=cancel)
            assert result.status == "cancelled"
            if processes == 2:
                assert graph._workers is not None
            out = tmp_path / f"segment{processes}.wav"
            render(graph, out, "float32", segment=(0.5, 1.2))
        digests.append(digest(out))
    assert digests[0] == digests[1]


def test_blocks_other_than_those_read_ahead_are_refused(tmp_path: Path) -> None:
    import pytest

    with Graph(spec(), processes=2, workers=TrackWorkers) as graph:
        graph.read_ahead(graph.total_frames)
        assert graph.next_block() is not None  # the next one is on its way
        with pytest.raises(RuntimeError, match="ask for blocks up to the frame"):
            graph.next_block(100)
        graph.seek(0)  # and the graph is usable again
        assert graph.next_block() is not None


def test_a_worker_waits_for_the_next_render_and_a_dead_one_is_replaced(
        tmp_path: Path) -> None:
    import os
    import signal

    from backend.audio import workers

    workers.prewarm(1)
    try:
        assert len(workers._idle) == 1
        idle_pid = workers._idle[0][0].pid
        with Graph(spec(), processes=2, workers=TrackWorkers) as graph:
            assert graph._workers is not None
            assert [p.pid for p in graph._workers._procs] == [idle_pid]  # no fork
            assert not workers._idle
            render(graph, tmp_path / "one.wav", "float32")
        assert [w[0].pid for w in workers._idle] == [idle_pid]  # back, waiting
        os.kill(idle_pid, signal.SIGKILL)
        workers._idle[0][0].join(5)
        with Graph(spec(), processes=2,
                   workers=TrackWorkers) as graph:  # a new one, the dead one dropped
            assert graph._workers is not None
            assert [p.pid for p in graph._workers._procs] != [idle_pid]
            render(graph, tmp_path / "two.wav", "float32")
        assert digest(tmp_path / "one.wav") == digest(tmp_path / "two.wav")
        assert len(workers._idle) == 1 and workers._idle[0][0].is_alive()
    finally:
        workers.prewarm(0)  # the other tests start their workers afresh
        for proc, pipe in workers._idle:
            pipe.close()
            proc.join(5)
        workers._idle.clear()
