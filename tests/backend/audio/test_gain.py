"""The gain model and the track fader: exact levels, and changes that ramp instead of step."""

from __future__ import annotations

import numpy as np
import pytest

from backend.audio import Graph, TaskSpec, create_instance
from backend.audio.levels import db_to_gain
from tests.backend.audio.audio_helpers import peak_db, run_blocks, sine, spec_dict, tone


def test_minus_6_dbfs_tone_through_plus_3_db_gain_measures_minus_3_dbfs() -> None:
    gain = create_instance("gain", 48000, {"gain_db": 3.0})
    out = gain.process(sine(1000, db_to_gain(-6.0), 4800))
    assert peak_db(out[:, 0]) == pytest.approx(-3.0, abs=0.01)
    assert peak_db(out[:, 1]) == pytest.approx(-3.0, abs=0.01)


def test_the_same_through_the_graph_and_the_meters() -> None:
    spec = TaskSpec.model_validate(spec_dict(
        [{"id": "t", "source": tone(1000, -6.0, 0.5), "pan": -1.0, "chain": ["trim"]}],
        {"trim": {"model": "gain", "params": {"gain_db": 3.0}}}))
    with Graph(spec) as graph:
        blocks = []
        while (block := graph.next_block()) is not None:
            blocks.append(block)
        reading = graph.meters()
    mix = np.concatenate(blocks)
    assert peak_db(mix[:, 0]) == pytest.approx(-3.0, abs=0.01)
    assert reading.peak_dbfs[0] == pytest.approx(-3.0, abs=0.01)
    assert reading.peak_dbfs[1] == -120.0  # hard left: nothing on the right


def test_track_fader_plus_3_db_at_centre_is_minus_3_01_db_per_side() -> None:
    spec = TaskSpec.model_validate(spec_dict(
        [{"id": "t", "source": tone(1000, -6.0, 0.5), "gain_db": 3.0}]))
    with Graph(spec) as graph:
        mix = np.concatenate([graph.next_block() for _ in range(5)])  # type: ignore[misc]
    assert peak_db(mix[:, 0]) == pytest.approx(-6.0 + 3.0 - 3.0103, abs=0.01)
    assert np.array_equal(mix[:, 0], mix[:, 1])


def test_a_gain_change_is_ramped_over_the_next_block() -> None:
    gain = create_instance("gain", 48000, {"gain_db": 0.0})
    dc = np.full((100, 2), 0.25)
    gain.process(dc)
    gain.set_params({"gain_db": 12.0})
    ramped = gain.process(dc)[:, 0]
    steps = np.diff(ramped)
    assert np.all(steps > 0) and steps.max() < 0.02  # no jump: 100 small steps up
    assert ramped[-1] == pytest.approx(0.25 * db_to_gain(12.0))
    after = gain.process(dc)[:, 0]
    assert np.allclose(after, 0.25 * db_to_gain(12.0))


def test_gain_accepts_float32_and_returns_float64_without_touching_the_input() -> None:
    gain = create_instance("gain", 48000, {"gain_db": -6.0})
    block = sine(440, 0.5, 777).astype(np.float32)
    before = block.copy()
    out = run_blocks(gain, block, 100)
    assert out.dtype == np.float64 and out.shape == block.shape
    assert np.array_equal(block, before)
