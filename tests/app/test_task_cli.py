"""The task command line's pure parts: the ``--farm`` argument and a farm render's summary."""

from __future__ import annotations

import argparse

import pytest

from app.task_cli import farm_runners, farm_summary


def test_farm_takes_a_count_or_runner_names() -> None:
    assert farm_runners("2") == 2
    assert farm_runners("r1, r2,") == ["r1", "r2"]
    for wrong in ("0", ",", " "):
        with pytest.raises(argparse.ArgumentTypeError):
            farm_runners(wrong)


def test_a_farm_render_says_what_each_part_did_and_who_was_skipped() -> None:
    render = {"farm": {"chunks": 2, "skipped": {"r9": "it is down"}, "parts": [
        {"part": 0, "name": "r1", "chunks": [0], "state": "lost", "reason": "r1 went down"},
        {"part": 1, "name": "engine", "chunks": [1, 0], "state": "done", "reason": None}]}}
    assert farm_summary(render) == [
        "part 1: r1, chunk 1 of 2: lost: r1 went down",
        "part 2: engine, chunks 1, 2 of 2: done", "Skipped: r9 (it is down)"]
    assert farm_summary({"farm": None}) == []
