"""Shipped resources stay true: the exported schema matches the model; example specs parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.audio.spec import parse_task_spec, task_spec_schema

ROOT = Path(__file__).resolve().parent.parent


def test_task_spec_schema_file_matches_the_model() -> None:
    shipped = json.loads((ROOT / "resources" / "schemas" / "task-spec.json").read_text())
    assert shipped == task_spec_schema(), (
        "resources/schemas/task-spec.json is stale: regenerate it with "
        "`controlroom task schema > resources/schemas/task-spec.json`"
    )


@pytest.mark.parametrize("path", sorted((ROOT / "resources" / "specs").glob("*.json")),
                         ids=lambda p: p.name)
def test_example_specs_are_valid(path: Path) -> None:
    spec = parse_task_spec(path.read_text())
    assert spec.tracks
