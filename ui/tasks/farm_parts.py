"""What a farm render's parts say, in words: one line per part, the skipped runners, the
assembly.

A farm render (``docs/farm.md``) splits a task's mix into chunks of its summation tree and
deals them to parts: runners, and the task's engine when a chunk is left for it. The
command line's ``task render --farm`` prints the same lines. Its render view carries ``farm``
(null for an engine render)::

    {"chunks": 4,
     "parts": [{"part": 0, "name": "r1", "chunks": [0, 2], "state": "running",
                "progress": 0.4, "job": "j_0123456789ab", "reason": null}, ...],
     "skipped": {"r3": "it is down"},
     "assembly": 0.0}

Pure (no Qt): the task panel's part rows (``farm_progress.py``) show what this module
says, and the tests read it without a window. Chunks are numbered from 1 here, as a
person counts; the hub numbers them from 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: A part's state, as the operator reads it, and what it means (for the tooltip).
PART_STATES: dict[str, tuple[str, str]] = {
    "waiting": ("waiting", "not started yet"),
    "running": ("rendering", "rendering its chunks"),
    "done": ("done", "its chunks are rendered and sent to the hub"),
    "failed": ("failed", "it failed, and so did the render"),
    "lost": ("lost", "its runner was lost or could not take it; a later part renders "
                     "its chunks"),
    "cancelled": ("cancelled", "stopped with the render"),
}

#: Mid-tone colours that read on light and dark palettes; always next to the word.
PART_COLOURS: dict[str, str] = {
    "waiting": "#757575", "running": "#6a1b9a", "done": "#2e7d32", "failed": "#c62828",
    "lost": "#ef6c00", "cancelled": "#757575",
}

ENGINE = "engine"  # the part the task's engine renders (``backend/hub/tasks/farm_plan.py``)


@dataclass(frozen=True)
class PartLine:
    """One part as a row: who renders it, which chunks, how far, and its state."""

    part: int
    who: str          # "r1", or "engine-1 (engine)" for the task's engine
    chunks: str       # "chunks 1, 3 of 4"
    progress: float   # 0..1
    state: str        # the hub's word: waiting, running, done, failed, lost, cancelled
    status: str       # what the row says: "rendering 40 %", "lost: r1 went away"
    tooltip: str
    colour: str


def farm_of(render: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The render's farm record; None for an engine render (or none at all)."""
    farm = (render or {}).get("farm")
    return dict(farm) if isinstance(farm, Mapping) else None


def chunk_list(chunks: Sequence[int]) -> str:
    """``1, 3`` or ``1-4, 6``: chunk indexes (from 0) as a person numbers them."""
    runs: list[list[int]] = []
    for number in sorted({int(c) + 1 for c in chunks}):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 2
                     else ", ".join(str(n) for n in run) for run in runs)


def chunks_text(chunks: Sequence[int], total: int) -> str:
    """``chunk 2 of 4``, ``chunks 1, 3 of 4``; ``no chunk`` when it has none left."""
    if not chunks:
        return "no chunk"
    noun = "chunk" if len(chunks) == 1 else "chunks"
    return f"{noun} {chunk_list(chunks)} of {total}" if total else f"{noun} {chunk_list(chunks)}"


def part_lines(farm: Mapping[str, Any], engine: str | None = None) -> list[PartLine]:
    """One line per part, in the hub's order. ``engine`` names the task's engine, so the
    engine's part reads ``engine-1 (engine)`` rather than a bare ``engine``."""
    total = int(farm.get("chunks") or 0)
    lines = []
    for index, part in enumerate(farm.get("parts") or []):
        name = str(part.get("name") or "?")
        is_engine = name == ENGINE
        who = f"{engine} (engine)" if is_engine and engine else name
        state = str(part.get("state") or "waiting")
        word, meaning = PART_STATES.get(state, (state, state))
        reason = part.get("reason")
        progress = min(1.0, max(0.0, float(part.get("progress") or 0.0)))
        status = f"{word}: {reason}" if reason else word
        if state == "running":
            status = f"{word} {progress * 100:.0f} %"
        chunks = [int(c) for c in part.get("chunks") or []]
        number = int(part.get("part", index)) + 1
        where = "this task's engine" if is_engine else f"runner {name}"
        share = (f"chunk{'s' * (len(chunks) != 1)} {chunk_list(chunks)} of the mix's "
                 f"{total}" if chunks else "no chunk of the mix")
        if state == "waiting" and not is_engine:
            meaning = f"not started yet: waiting for {name} to take its job"
        tip = [f"Part {number}: {where} renders {share}.",
               f"{word.capitalize()} ({progress * 100:.0f} %): {meaning}."]
        if reason:
            tip.append(f"Why: {reason}")
        if part.get("job"):
            tip.append(f"Its job on the Runners tab: {part['job']}")
        lines.append(PartLine(
            part=number, who=who, chunks=chunks_text(chunks, total), progress=progress,
            state=state, status=status, tooltip="\n".join(tip),
            colour=PART_COLOURS.get(state, "#757575")))
    return lines


def skipped_line(farm: Mapping[str, Any]) -> str | None:
    """``Skipped: r3 (it is down); r2 (needs 1 CPUs, 0 free)``; None when none was."""
    skipped = farm.get("skipped") or {}
    if not skipped:
        return None
    return "Skipped: " + "; ".join(f"{name} ({why})" for name, why in skipped.items())


def assembly_line(farm: Mapping[str, Any]) -> str | None:
    """``Assembling: 40 %`` once the hub has begun summing the parts; None before."""
    assembly = float(farm.get("assembly") or 0.0)
    if assembly <= 0.0:
        return None
    return f"Assembling: {min(assembly, 1.0) * 100:.0f} %"


def farm_summary(farm: Mapping[str, Any], engine: str | None = None) -> str:
    """``4 chunks over r1, r2 and engine-1 (engine)``: the render's split in one line."""
    names = list(dict.fromkeys(line.who for line in part_lines(farm, engine)
                               if line.state != "lost"))
    total = int(farm.get("chunks") or 0)
    over = (", ".join(names[:-1]) + " and " + names[-1]) if len(names) > 1 else \
        (names[0] if names else "no part")
    return f"{total} chunk{'s' * (total != 1)} over {over}"
