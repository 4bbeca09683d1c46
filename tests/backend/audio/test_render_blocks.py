"""An offline render reads in large blocks and gives the samples of the spec's block size.

Compared on the float64 bus, not on a file: a difference of one part in 1e16 (what the
compressor's release tables make of a block that starts elsewhere) rarely survives the
rounding to 24-bit or float32 samples, so a file comparison would almost never see it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from backend.audio import MODELS, Graph, TaskSpec, offline_block, render
from backend.audio.compressor import Compressor
from tests.backend.audio.audio_helpers import PARAMS, model_spec, spec_dict, tone


def test_every_model_has_a_case_here() -> None:
    assert set(PARAMS) == set(MODELS)


def bus(spec: TaskSpec, block_frames: int | None = None,
        segment: tuple[int, int] | None = None) -> npt.NDArray[np.float64]:
    with Graph(spec, block_frames=block_frames) as graph:
        end = graph.total_frames
        if segment is not None:
            graph.seek(segment[0])
            end = segment[1]
        blocks = []
        while graph.position_frames < end and (
                block := graph.next_block(end - graph.position_frames)) is not None:
            blocks.append(block.copy())
    return np.concatenate(blocks)


@pytest.mark.parametrize("model", sorted(PARAMS))
@pytest.mark.parametrize("block_size", [1024, 333])
def test_large_blocks_give_the_samples_of_the_spec_block_size(
        tmp_path: Path, model: str, block_size: int) -> None:
    spec = TaskSpec.model_validate(model_spec(tmp_path, model, block_size))
    large = offline_block(spec)
    assert large > block_size and large % block_size == 0
    assert np.array_equal(bus(spec, large), bus(spec))
    segment = (block_size * 7 + 5, 48000 + 123)  # a segment starts anywhere
    assert np.array_equal(bus(spec, large, segment), bus(spec, segment=segment))


def test_without_spec_blocks_the_compressor_would_differ(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above can fail: the compressor given large blocks whole differs."""
    spec = TaskSpec.model_validate(model_spec(tmp_path, "compressor", 1024))
    expected = bus(spec)
    monkeypatch.setattr(Compressor, "block_dependent", False)
    assert not np.array_equal(bus(spec, offline_block(spec)), expected)


def test_a_render_file_at_large_blocks_is_the_spec_block_render(tmp_path: Path) -> None:
    spec = TaskSpec.model_validate(model_spec(tmp_path, "compressor", 512))
    with Graph(spec) as graph:
        render(graph, tmp_path / "spec.wav", "float32")
    with Graph(spec, block_frames=offline_block(spec)) as graph:
        assert graph.block_size == 8192
        render(graph, tmp_path / "large.wav", "float32")
    assert (tmp_path / "spec.wav").read_bytes() == (tmp_path / "large.wav").read_bytes()


def test_the_working_block_must_be_whole_spec_blocks(tmp_path: Path) -> None:
    spec = TaskSpec.model_validate(spec_dict([{"id": "t", "source": tone()}], block_size=1000))
    assert offline_block(spec) == 8000
    with pytest.raises(ValueError, match="multiple of the spec's block size"):
        Graph(spec, block_frames=8192)
