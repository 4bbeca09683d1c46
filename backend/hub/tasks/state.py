"""An audio task's state, folded from its events; and which commands each state allows.

The hub keeps no task state of its own: it appends events (reserved, accepted, play,
render_progress, component_down, ...) and folds them (:func:`apply`). That makes the state
survive a restart (fold the stored events again) and keeps the rules here, pure, tested
without an engine. :func:`require` is the guard every transport call passes first; its
:class:`Conflict` says the current state and what would make the call possible.

States: ``pending`` (spec pushed, waiting for every component to accept),
``ready``, ``playing``, ``rendering``, ``failed`` (with ``error``; a component that
registers again gets the spec again and the task returns to ready), ``released``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TaskState(StrEnum):
    PENDING = "pending"
    READY = "ready"
    PLAYING = "playing"
    RENDERING = "rendering"
    FAILED = "failed"
    RELEASED = "released"


class RenderState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Conflict(Exception):
    """A command the task's current state does not allow (HTTP 409)."""


@dataclass
class Render:
    render_id: str
    format: str
    segment: list[float] | None
    state: RenderState = RenderState.RUNNING
    progress: float = 0.0
    error: str | None = None
    file: str | None = None
    bytes: int | None = None
    started_at: float = 0.0
    finished_at: float | None = None
    #: A render split over runners and the engine (``farm.py``): ``asked`` (the runners
    #: asked for: a count or names), ``chunks`` (of the mix in all), ``parts`` (each:
    #: ``part``, ``name``, ``chunks``, ``state``, ``progress``, ``job``, ``reason``),
    #: ``skipped`` (runner -> why not) and ``assembly`` (0..1).
    farm: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        return {
            "render_id": self.render_id, "state": self.state.value,
            "progress": round(self.progress, 4), "error": self.error, "file": self.file,
            "bytes": self.bytes, "format": self.format, "segment": self.segment,
            "started_at": self.started_at, "finished_at": self.finished_at,
            "farm": _farm_view(self.farm),
        }


#: A farm part's states: ``waiting`` (not started, or its job not yet placed),
#: ``running``, ``done``, ``failed``, ``lost`` (its runner was lost or could not take it;
#: a later part renders its chunks), ``cancelled``.
PART_STATES = ("waiting", "running", "done", "failed", "lost", "cancelled")


def _farm_view(farm: dict[str, Any] | None) -> dict[str, Any] | None:
    if farm is None:
        return None
    return {**farm, "parts": [{**p, "progress": round(p["progress"], 4)}
                              for p in farm["parts"]], "skipped": dict(farm["skipped"])}


@dataclass
class Task:
    id: str
    spec: dict[str, Any]
    engine: str
    drivers: dict[str, list[str]]
    created_at: float
    state: TaskState = TaskState.PENDING
    error: str | None = None
    waiting: set[str] = field(default_factory=set)
    play: dict[str, Any] | None = None
    renders: dict[str, Render] = field(default_factory=dict)
    seq: int = 0

    @property
    def components(self) -> list[str]:
        return [self.engine, *sorted(self.drivers)]

    @property
    def active_render(self) -> Render | None:
        for render in self.renders.values():
            if render.state is RenderState.RUNNING:
                return render
        return None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "state": self.state.value, "spec": self.spec, "error": self.error,
            "engine": self.engine, "drivers": self.drivers, "waiting_for": sorted(self.waiting),
            "play": self.play, "renders": [r.view() for r in self.renders.values()],
            "created_at": self.created_at, "commands": allowed_commands(self.state),
        }


# -- guards ---------------------------------------------------------------------------

_ALLOWED: dict[str, tuple[TaskState, ...]] = {
    "play": (TaskState.READY,),
    "stop": (TaskState.PLAYING,),
    "render": (TaskState.READY,),
    "render_cancel": (TaskState.RENDERING,),
    "release": (TaskState.PENDING, TaskState.READY, TaskState.PLAYING, TaskState.RENDERING,
                TaskState.FAILED),
    "patch": (TaskState.READY, TaskState.PLAYING, TaskState.RENDERING),
}

_HINT = {
    TaskState.PENDING: "wait until every component has accepted the spec",
    TaskState.PLAYING: "stop it first",
    TaskState.RENDERING: "wait for the render or cancel it first",
    TaskState.FAILED: "see its error; it returns to ready when its components are back",
    TaskState.RELEASED: "reserve a new task",
    TaskState.READY: "play or render it first",
}


def allowed_commands(state: TaskState) -> list[str]:
    """The commands the hub accepts for a task in ``state``, sorted.

    Every task view carries them, so a console enables exactly what this hub's guard
    lets through, instead of keeping its own copy of the table (which would go wrong
    against a hub of another version).
    """
    return sorted(command for command, states in _ALLOWED.items() if state in states)


def require(task: Task, command: str) -> None:
    """Raise :class:`Conflict` unless ``command`` makes sense in the task's state."""
    if task.state not in _ALLOWED[command]:
        raise Conflict(
            f"cannot {command.replace('_', ' ')} task {task.id}: it is {task.state.value}; "
            f"{_HINT[task.state]}"
        )


# -- the fold -------------------------------------------------------------------------


def _new_part(index: int, name: str, chunks: list[int]) -> dict[str, Any]:
    return {"part": index, "name": name, "chunks": list(chunks), "state": "waiting",
            "progress": 0.0, "job": None, "reason": None}


def apply(task: Task | None, event: dict[str, Any]) -> Task:
    """Fold one event into the task (``None`` before ``reserved``); returns the task."""
    kind = event["type"]
    ts = float(event.get("ts", 0.0))
    if kind == "reserved":
        new = Task(
            id=event["task_id"], spec=event["spec"], engine=event["engine"],
            drivers={k: list(v) for k, v in event["drivers"].items()}, created_at=ts,
        )
        new.waiting = set(new.components)
        new.seq = 1
        return new
    if task is None:
        raise ValueError(f"event {kind} before reserved")
    task.seq += 1
    if kind == "accepted":
        task.waiting.discard(event["component"])
        if not task.waiting and task.state in (TaskState.PENDING, TaskState.FAILED):
            task.state, task.error = TaskState.READY, None
    elif kind == "refused":
        task.state = TaskState.FAILED
        task.error = f"{event['component']} refused the spec: {event['reason']}"
    elif kind == "resync":  # a component came back: push again, wait for it again
        task.waiting.add(event["component"])
    elif kind == "play":
        task.state = TaskState.PLAYING
        task.play = {"state": "playing", "started_at": ts, "stopped_at": None, "error": None,
                     "position_s": 0.0}
    elif kind == "play_position" and task.play is not None:
        task.play["position_s"] = event["position_s"]
    elif kind == "stopped":
        if task.play is not None:
            task.play.update(state="stopped", stopped_at=ts)
        if task.state is TaskState.PLAYING:
            task.state = TaskState.READY
    elif kind == "play_failed":
        if task.play is not None:
            task.play.update(state="failed", stopped_at=ts, error=event["reason"])
        task.state, task.error = TaskState.FAILED, f"play failed: {event['reason']}"
    elif kind == "render":
        task.state = TaskState.RENDERING
        farm = event.get("farm")
        task.renders[event["render_id"]] = Render(
            event["render_id"], event["format"], event.get("segment"), started_at=ts,
            farm=None if farm is None else {
                "asked": farm.get("asked"), "chunks": farm["chunks"],
                "skipped": dict(farm.get("skipped") or {}),
                "assembly": 0.0, "parts": [_new_part(i, p["name"], p["chunks"])
                                           for i, p in enumerate(farm["parts"])]},
        )
    elif kind == "render_progress":
        task.renders[event["render_id"]].progress = float(event["progress"])
    elif kind == "render_part":  # a farm part moved: its state, progress, job or reason
        farm = task.renders[event["render_id"]].farm
        assert farm is not None
        part = farm["parts"][event["part"]]
        if "part_state" in event:  # named so: an event's ``state`` is the task's
            part["state"] = event["part_state"]
        for key in ("progress", "job", "reason"):
            if key in event:
                part[key] = event[key]
    elif kind == "render_reassigned":  # a part lost: its chunks go to a new part
        farm = task.renders[event["render_id"]].farm
        assert farm is not None
        lost = farm["parts"][event["part"]]
        lost.update(state="lost", reason=event["reason"])
        farm["parts"].append(_new_part(len(farm["parts"]), event["to"], lost["chunks"]))
    elif kind == "render_assembly":
        farm = task.renders[event["render_id"]].farm
        assert farm is not None
        farm["assembly"] = float(event["progress"])
    elif kind in ("render_done", "render_failed", "render_cancelled"):
        render = task.renders[event["render_id"]]
        render.finished_at = ts
        if kind == "render_done":
            render.state, render.progress = RenderState.DONE, 1.0
            render.file, render.bytes = event["file"], event["bytes"]
        elif kind == "render_failed":
            render.state, render.error = RenderState.FAILED, event["reason"]
        else:  # why, as every render that did not finish says (events before the reason
            #    was recorded say only that it was cancelled)
            render.state = RenderState.CANCELLED
            render.error = event.get("reason") or "cancelled"
        if task.state is TaskState.RENDERING:
            if kind == "render_failed" and event.get("task_failed"):
                task.state, task.error = TaskState.FAILED, f"render failed: {event['reason']}"
            else:
                task.state = TaskState.READY
    elif kind == "params":
        task.spec["instances"][event["instance_id"]]["params"] = event["params"]
    elif kind == "component_down":
        component, reason = event["component"], event["reason"]
        task.waiting.add(component)
        if task.state not in (TaskState.RELEASED,):
            task.state = TaskState.FAILED
            task.error = f"{component} is down: {reason}"
    elif kind == "released":
        task.state, task.waiting = TaskState.RELEASED, set()
    else:
        raise ValueError(f"unknown task event {kind!r}")
    return task
