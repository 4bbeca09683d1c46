"""The model registry and the instance contract every model (and every proxy) keeps."""

from __future__ import annotations

import numpy as np
import pytest

from backend.audio import (
    MODELS,
    BlockError,
    Instance,
    ParamError,
    UnknownModelError,
    check_params,
    create_instance,
    model_info,
)
from tests.backend.audio.audio_helpers import sine


def test_the_registry_names_the_four_models() -> None:
    assert set(MODELS) == {"gain", "eq", "compressor", "saturator"}


def test_unknown_model_is_refused_with_the_known_ones_listed() -> None:
    with pytest.raises(UnknownModelError, match=r"unknown instance model 'reverb'.*gain"):
        create_instance("reverb", 48000)


def test_defaults_and_schema_are_published() -> None:
    info = model_info("compressor")
    assert info.defaults() == {"threshold_db": -18.0, "ratio": 4.0, "attack_ms": 10.0,
                               "release_ms": 100.0, "makeup_db": 0.0, "knee_db": 0.0}
    schema = info.params_schema()
    assert schema["properties"]["ratio"]["maximum"] == 20.0
    assert schema["additionalProperties"] is False


def test_check_params_completes_with_defaults_and_names_bad_fields() -> None:
    assert check_params("gain", {}) == {"gain_db": 0.0}
    with pytest.raises(ParamError, match=r"compressor: ratio: .*less than or equal to 20"):
        check_params("compressor", {"ratio": 50})
    with pytest.raises(ParamError, match=r"unknown parameter 'treshold_db' \(known: thresh"):
        check_params("compressor", {"treshold_db": -10})
    with pytest.raises(ParamError, match=r"attack_ms: .*valid number"):
        check_params("compressor", {"attack_ms": "fast"})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_keeps_the_instance_contract(name: str) -> None:
    instance = create_instance(name, 48000)
    assert isinstance(instance, Instance)
    block = sine(440, 0.5, 777)
    before = block.copy()
    out = instance.process(block)
    assert out.shape == (777, 2) and out.dtype == np.float64
    assert np.array_equal(block, before)  # the input is never modified
    assert instance.process(np.zeros((0, 2))).shape == (0, 2)
    assert isinstance(instance.report(), dict)
    with pytest.raises(BlockError, match=r"\(frames, 2\)"):
        instance.process(np.zeros((10, 3)))
    with pytest.raises(BlockError, match="float"):
        instance.process(np.zeros((10, 2), dtype=np.int16))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_refused_update_leaves_the_parameters_as_they_were(name: str) -> None:
    instance = create_instance(name, 48000)
    before = instance.params
    with pytest.raises(ParamError):
        instance.set_params({"no_such_parameter": 1})
    assert instance.params == before


def test_set_params_merges_a_partial_update() -> None:
    comp = create_instance("compressor", 48000, {"ratio": 8})
    comp.set_params({"threshold_db": -30})
    assert comp.params["ratio"] == 8.0 and comp.params["threshold_db"] == -30.0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_same_blocks_give_the_same_bits(name: str) -> None:
    params = {"eq": {"bands": [{"freq_hz": 300, "gain_db": 4, "q": 2}]}}.get(name, {})
    a, b = create_instance(name, 48000, params), create_instance(name, 48000, params)
    signal = np.random.default_rng(3).uniform(-1, 1, (5000, 2))
    for i in range(0, 5000, 512):
        assert np.array_equal(a.process(signal[i:i + 512]), b.process(signal[i:i + 512]))


def test_parameters_of_another_model_are_refused() -> None:
    from backend.audio.gain import GainParams

    with pytest.raises(ParamError, match="GainParams given, EqParams expected"):
        create_instance("eq", 48000, GainParams(gain_db=1.0))
