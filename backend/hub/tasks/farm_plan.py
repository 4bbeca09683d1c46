"""Who renders which chunks of a farm render: a plan from the task, the runners and the ask.

Pure (no I/O): the hub's task service feeds it what it knows and acts on the plan. The
unit of work is the chunk of the summation tree (``backend/audio/graph.py``
``mix_layout``), which depends on the track count alone; a part renders whole chunks and
sends back one float64 stream per chunk, and the assembly sums them in chunk order, so
any plan gives the same file.

The rules, each one what an operator would expect:

- A chunk with a track whose chain goes through an instance driver stays with the
  engine: the engine is where the driver's insert link is.
- The engine takes a part whenever there is a chunk left for it (dealt last, so a task of
  one chunk on one runner is the runner's alone); it is also the part that can take any
  chunk back when a runner is lost.
- Runners are asked for by count (the first N that can take the job, by name) or by name;
  a runner that is unknown, down, or short of what the job needs is skipped, and the
  reason is kept for the render's record. Asking for more runners than there are chunks
  to share leaves the extra ones out, with that reason.
- Chunks are dealt in order, round-robin over the parts (engine last), so neighbouring
  chunks, which cost alike, land on different parts.
- A runner lost mid-render (or that refuses its part) has its chunks rendered again by a
  spare runner when the farm was asked for by count, else by the engine; the output does
  not change, as a chunk's stream is the same wherever it is computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

ENGINE = "engine"


@dataclass(frozen=True)
class Candidate:
    """A runner as the hub sees it when the render is asked for."""

    name: str
    up: bool
    shortfall: str | None = None  # why it cannot take the job now (its free resources)


@dataclass(frozen=True)
class Part:
    """One part: the engine or a runner (by name), and the chunks it renders."""

    name: str
    chunks: tuple[int, ...]

    @property
    def is_engine(self) -> bool:
        return self.name == ENGINE


@dataclass(frozen=True)
class Plan:
    parts: tuple[Part, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)  # runner -> why not

    def part_of(self, chunk: int) -> Part:
        return next(p for p in self.parts if chunk in p.chunks)

    @property
    def runners(self) -> list[str]:
        return [p.name for p in self.parts if not p.is_engine]


class PlanError(ValueError):
    """The farm cannot be asked for this way (a 409/422 for the caller)."""


def plan(chunks: int, engine_only: set[int], candidates: Sequence[Candidate],
         runners: int | Sequence[str]) -> Plan:
    """Split ``chunks`` chunks over the engine and the runners asked for."""
    if chunks < 1:
        raise PlanError("the task has no tracks to render")
    skipped: dict[str, str] = {}
    known = {c.name: c for c in candidates}
    if isinstance(runners, int):
        if runners < 1:
            raise PlanError("farm.runners must be at least 1 (or a list of runner names)")
        wanted = sorted(known)
        limit = runners
    else:
        if not runners:
            raise PlanError("farm.runners lists no runner")
        wanted = list(dict.fromkeys(runners))
        limit = len(wanted)
    chosen: list[str] = []
    for name in wanted:
        candidate = known.get(name)
        if candidate is None:
            skipped[name] = "no runner by that name is registered"
        elif not candidate.up:
            skipped[name] = "it is down"
        elif candidate.shortfall is not None:
            skipped[name] = candidate.shortfall
        elif len(chosen) < limit:
            chosen.append(name)
    free = [c for c in range(chunks) if c not in engine_only]
    if len(chosen) > len(free):
        for name in chosen[len(free):]:
            skipped[name] = (f"no chunk left for it: the task has {chunks} chunk(s)"
                             + (f", {len(engine_only)} of them through a driver"
                                if engine_only else ""))
        chosen = chosen[:len(free)]
    if not chosen:
        reasons = "; ".join(f"{n}: {r}" for n, r in skipped.items()) or "no runner is registered"
        raise PlanError(f"no runner can take part in this render ({reasons})")
    names = [*chosen, ENGINE]
    dealt: dict[str, list[int]] = {name: [] for name in names}
    for index, chunk in enumerate(free):
        dealt[names[index % len(names)]].append(chunk)
    dealt[ENGINE].extend(sorted(engine_only))
    parts = tuple(Part(name, tuple(sorted(dealt[name]))) for name in names if dealt[name])
    return Plan(parts, skipped)


def taker(lost: str, busy: Iterable[str], spare: Sequence[str] = ()) -> str:
    """Who renders a lost part's chunks again: the first spare runner (ready, with room,
    not already a part of this render and not lost from it), else the engine, which can
    always take them back."""
    if lost == ENGINE:
        raise PlanError("the engine's part is not reassigned: the render fails with it")
    taken = {*busy, lost}
    return next((name for name in spare if name not in taken), ENGINE)
