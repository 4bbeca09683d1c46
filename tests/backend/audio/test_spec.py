"""Task spec validation: every refusal names the field, so a typo is a readable 422."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from backend.audio import TaskSpec, parse_task_spec, task_spec_schema
from tests.backend.audio.audio_helpers import WINDOW, spec_dict, tone

DOCS = Path(__file__).resolve().parents[3] / "docs" / "audio.md"


def good() -> dict[str, Any]:
    return spec_dict(
        [{"id": "vox", "source": tone(), "gain_db": -3, "pan": 0.2, "chain": ["eq1", "comp"]},
         {"id": "bass", "source": {"type": "noise", "level_dbfs": -20, "seed": 7,
                                   "duration_s": 2}, "chain": ["tape"]}],
        {"eq1": {"model": "eq", "params": {"bands": [{"type": "low_shelf", "freq_hz": 120,
                                                     "gain_db": -3}]}},
         "comp": {"model": "compressor", "params": {"ratio": 3},
                  "location": {"driver": "rack-a"}},
         "tape": {"model": "saturator"}})


def errors_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        TaskSpec.model_validate(data)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in info.value.errors()]


def test_a_good_spec_validates_with_defaults_filled_in() -> None:
    spec = TaskSpec.model_validate(good())
    assert spec.block_size == 1024 and spec.mix.master_gain_db == 0.0
    assert spec.instances["comp"].params.threshold_db == -18.0  # type: ignore[union-attr]
    assert spec.fixed_instances() == {"comp": "rack-a"}
    assert spec.generator_duration_s() == 2.0


def test_a_typo_is_refused_and_named() -> None:
    data = good()
    data["tracks"][0]["gian_db"] = 3
    assert errors_of(data) == [("tracks.0.gian_db", "Extra inputs are not permitted")]
    data = good()
    data["mix"] = {"master_gain": 1}
    assert errors_of(data)[0][0] == "mix.master_gain"


def test_bad_instance_params_are_named_down_to_the_band_field() -> None:
    data = good()
    data["instances"]["eq1"]["params"]["bands"][0]["freq_hz"] = 30000
    (loc, msg), = errors_of(data)
    assert loc == "instances.eq1.eq.params.bands.0.freq_hz"
    assert "less than or equal to 20000" in msg
    data = good()
    data["instances"]["comp"]["params"] = {"ratoi": 3}
    assert errors_of(data)[0][0] == "instances.comp.compressor.params.ratoi"


def test_an_unknown_model_lists_the_known_ones() -> None:
    data = good()
    data["instances"]["tape"]["model"] = "reverb"
    (loc, msg), = errors_of(data)
    assert loc == "instances.tape" and "'gain', 'eq', 'compressor', 'saturator'" in msg


def test_chain_entries_must_be_declared_instances() -> None:
    data = good()
    data["tracks"][1]["chain"] = ["tape", "delay"]
    (_, msg), = errors_of(data)
    assert msg == "tracks[1].chain[1]: instance 'delay' is not declared in instances"


def test_an_instance_sits_in_one_place_only() -> None:
    data = good()
    data["tracks"][1]["chain"] = ["tape", "eq1"]
    (_, msg), = errors_of(data)
    assert msg.startswith("tracks[1].chain[1]: instance 'eq1' is already in tracks[0].chain[0]")


def test_a_declared_but_unused_instance_is_refused() -> None:
    data = good()
    data["instances"]["spare"] = {"model": "gain"}
    (_, msg), = errors_of(data)
    assert msg.startswith("instances.spare: declared but in no track's chain")


def test_track_ids_are_unique() -> None:
    data = good()
    data["tracks"][1]["id"] = "vox"
    (_, msg), = errors_of(data)
    assert msg == "tracks[1].id: 'vox' is already used by tracks[0]"


@pytest.mark.parametrize(("field", "value", "loc"), [
    ("sample_rate", 22050, "sample_rate"),
    ("block_size", 32, "block_size"),
    ("block_size", 10000, "block_size"),
    ("duration_s", 0, "duration_s"),
    ("tracks", [], "tracks"),
])
def test_top_level_ranges(field: str, value: Any, loc: str) -> None:
    data = good()
    data[field] = value
    assert errors_of(data)[0][0] == loc


def test_sources_are_a_tagged_union() -> None:
    data = good()
    data["tracks"][0]["source"] = {"type": "tone", "freq_hz": 1000, "level_dbfs": 3,
                                   "duration_s": 1}
    assert errors_of(data)[0][0] == "tracks.0.source.tone.level_dbfs"
    data["tracks"][0]["source"] = {"type": "sample", "path": "x.wav"}
    assert errors_of(data)[0][0] == "tracks.0.source"


def test_the_window_needs_offsets_and_order() -> None:
    data = good()
    data["window"] = {"start": "2026-11-22T10:00:00", "end": "2026-11-22T11:00:00"}
    assert {loc for loc, _ in errors_of(data)} == {"window.start", "window.end"}
    data["window"] = {"start": WINDOW["end"], "end": WINDOW["start"]}
    (loc, msg), = errors_of(data)
    assert loc == "window" and msg == "window.end must be after window.start"


def test_pan_and_location_shapes() -> None:
    data = good()
    data["tracks"][0]["pan"] = 1.5
    assert errors_of(data)[0][0] == "tracks.0.pan"
    data = good()
    data["instances"]["comp"]["location"] = {"drivr": "rack-a"}
    assert any(loc.startswith("instances.comp.compressor.location") for loc, _ in errors_of(data))


def test_duplicate_json_keys_are_refused_not_silently_merged() -> None:
    text = json.dumps(good())
    doubled = text.replace('"tape": {"model": "saturator"}',
                           '"tape": {"model": "saturator"}, "tape": {"model": "gain"}')
    with pytest.raises(ValidationError, match="duplicate key 'tape'"):
        parse_task_spec(doubled)
    assert parse_task_spec(text) == TaskSpec.model_validate(good())
    with pytest.raises(ValidationError, match=r"json_invalid|Invalid JSON"):
        parse_task_spec(text[:-3])


def test_the_json_schema_is_exported_with_every_model() -> None:
    schema = task_spec_schema()
    assert schema["additionalProperties"] is False
    defs = schema["$defs"]
    assert {"EqParams", "CompressorParams", "SaturatorParams", "GainParams"} <= set(defs)
    json.dumps(schema)  # plain JSON


def test_the_example_in_docs_audio_md_is_a_valid_spec() -> None:
    text = DOCS.read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    examples = [b for b in blocks if '"tracks"' in b]
    assert examples, "docs/audio.md should show a full task spec"
    for example in examples:
        spec = parse_task_spec(example)
        assert spec.tracks and spec.window.end > spec.window.start
