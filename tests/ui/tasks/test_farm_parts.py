"""A farm render's parts, as the task panel shows them under the render bar.

The render views are dicts as the hub's task view carries them (``renders[].farm``);
the panel with a real hub and a render through it are in ``test_tasks_view.py``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QApplication

from ui.tasks.farm_parts import (
    assembly_line,
    chunk_list,
    chunks_text,
    farm_of,
    farm_summary,
    part_lines,
    skipped_line,
)
from ui.tasks.farm_progress import FarmProgress

#: r1 was lost halfway: its chunks went to a third part, on the engine.
FARM: dict[str, Any] = {
    "chunks": 4,
    "parts": [
        {"part": 0, "name": "r1", "chunks": [0, 2], "state": "lost", "progress": 0.5,
         "job": "j_0123456789ab", "reason": "r1 went away; its chunks went to the engine"},
        {"part": 1, "name": "engine", "chunks": [1, 3], "state": "done", "progress": 1.0,
         "job": None, "reason": None},
        {"part": 2, "name": "engine", "chunks": [0, 2], "state": "running",
         "progress": 0.25, "job": None, "reason": None},
    ],
    "skipped": {"r3": "it is down", "r2": "needs 1 CPUs, 0 free"},
    "assembly": 0.0,
}


def test_chunks_are_numbered_as_a_person_counts() -> None:
    assert chunk_list([0, 2]) == "1, 3"
    assert chunk_list([3, 0, 1, 2, 5]) == "1-4, 6"
    assert chunk_list([4, 5]) == "5, 6"
    assert chunks_text([1], 4) == "chunk 2 of 4"
    assert chunks_text([0, 2], 4) == "chunks 1, 3 of 4"
    assert chunks_text([], 4) == "no chunk"


def test_each_part_says_who_which_chunks_how_far_and_why() -> None:
    lines = part_lines(FARM, engine="engine-1")
    assert [(p.part, p.who, p.chunks, p.status) for p in lines] == [
        (1, "r1", "chunks 1, 3 of 4", "lost: r1 went away; its chunks went to the engine"),
        (2, "engine-1 (engine)", "chunks 2, 4 of 4", "done"),
        (3, "engine-1 (engine)", "chunks 1, 3 of 4", "rendering 25 %"),
    ]
    assert [p.progress for p in lines] == [0.5, 1.0, 0.25]
    assert lines[0].tooltip.splitlines() == [
        "Part 1: runner r1 renders chunks 1, 3 of the mix's 4.",
        "Lost (50 %): its runner was lost or could not take it; a later part renders its "
        "chunks.",
        "Why: r1 went away; its chunks went to the engine",
        "Its job on the Runners tab: j_0123456789ab",
    ]
    assert part_lines(FARM)[1].who == "engine"  # the engine's name unknown
    waiting = part_lines({"chunks": 2, "parts": [
        {"part": 0, "name": "r1", "chunks": [0], "state": "waiting"}]})[0]
    assert waiting.status == "waiting"
    assert "waiting for r1 to take its job" in waiting.tooltip
    assert skipped_line(FARM) == "Skipped: r3 (it is down); r2 (needs 1 CPUs, 0 free)"
    assert skipped_line({**FARM, "skipped": {}}) is None
    assert assembly_line(FARM) is None
    assert assembly_line({**FARM, "assembly": 0.426}) == "Assembling: 43 %"
    assert farm_summary(FARM, "engine-1") == "4 chunks over engine-1 (engine)"
    assert farm_of({"render_id": "r_1", "farm": None}) is None
    assert farm_of({"render_id": "r_1"}) is None
    assert farm_of({"render_id": "r_1", "farm": FARM}) == FARM


def test_the_rows_follow_the_parts_and_hide_for_an_engine_render(qapp: QApplication) -> None:
    view = FarmProgress()
    assert view.isHidden()
    view.show_farm(FARM, "engine-1")
    assert not view.isHidden() and len(view.rows) == 3
    assert [r.who.text() for r in view.rows] == [
        "Part 1: r1", "Part 2: engine-1 (engine)", "Part 3: engine-1 (engine)"]
    assert [r.bar.value() for r in view.rows] == [500, 1000, 250]
    assert view.rows[0].status.text().startswith("lost: r1 went away")
    assert "Why: r1 went away" in view.rows[0].status.toolTip()
    assert view.skipped.text() == "Skipped: r3 (it is down); r2 (needs 1 CPUs, 0 free)"
    assert not view.skipped.isHidden() and view.assembly.isHidden()

    # The next update: a part fewer, the sum begun, nothing skipped.
    later = {**FARM, "parts": FARM["parts"][1:], "skipped": {}, "assembly": 0.5}
    view.show_farm(later, "engine-1")
    assert len(view.rows) == 2 and view.rows[1].status.text() == "rendering 25 %"
    assert view.skipped.isHidden() and view.assembly.text() == "Assembling: 50 %"
    view.show_farm(None)
    assert view.isHidden()
