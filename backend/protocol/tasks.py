"""Messages for audio tasks between the hub, the engine and instance drivers.

Text messages carry commands and reports; the audio itself travels in binary frames
(:mod:`backend.protocol.frames`). ``docs/protocol.md`` ("Audio tasks") has the sequences.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from backend.protocol.messages import Message, register


class InsertLink(BaseModel):
    """Where a driver takes insert blocks directly, and the key it asks for
    (``backend/protocol/insertlink.py``). Only ever sent over the agents' own channel."""

    host: str
    port: int = Field(ge=1, le=65535)
    key: str = Field(min_length=16, repr=False)
    #: Every frame encrypted and authenticated (``backend/protocol/insertseal.py``): a
    #: driver listening beyond loopback always seals.
    sealed: bool = False

# -- hub -> engine / driver -----------------------------------------------------------


class TaskSpecPush(Message):
    """Take this spec (reserve). A driver is told which of its instances the task uses."""

    type: Literal["task.spec"] = "task.spec"
    task_id: str
    spec: dict[str, Any]
    instances: list[str] = Field(default_factory=list)


class TaskDrop(Message):
    """Forget this task's spec (reservation cancel)."""

    type: Literal["task.drop"] = "task.drop"
    task_id: str


class PlayStart(Message):
    type: Literal["task.play"] = "task.play"
    task_id: str
    #: The task's drivers that take inserts directly, by name (the others: through the hub).
    inserts: dict[str, InsertLink] = Field(default_factory=dict)


class PlayStop(Message):
    type: Literal["task.stop"] = "task.stop"
    task_id: str
    reason: str = "stopped by the operator"


class RenderStart(Message):
    type: Literal["render.start"] = "render.start"
    task_id: str
    render_id: str
    format: Literal["wav24", "float32"] = "wav24"
    segment: list[float] | None = None
    inserts: dict[str, InsertLink] = Field(default_factory=dict)
    #: A part of a farm render: render only these chunks of the mix's summation tree and
    #: send their float64 partials back, concatenated in chunk order (``docs/farm.md``).
    chunks: list[int] | None = None
    #: Which part of the farm render this is (echoed in its progress and end).
    part: int | None = None


class RenderCancel(Message):
    type: Literal["render.cancel"] = "render.cancel"
    task_id: str
    render_id: str
    reason: str = "cancelled by the operator"


class InstanceParams(Message):
    """Change an instance's parameters now (on the engine, or on a fixed instance's driver)."""

    type: Literal["instance.params"] = "instance.params"
    task_id: str
    instance_id: str
    params: dict[str, Any]


# -- engine / driver -> hub -----------------------------------------------------------


class TaskAccepted(Message):
    type: Literal["task.accepted"] = "task.accepted"
    task_id: str


class TaskRefused(Message):
    type: Literal["task.refused"] = "task.refused"
    task_id: str
    reason: str


class TaskDropped(Message):
    type: Literal["task.dropped"] = "task.dropped"
    task_id: str


class PlayState(Message):
    """The engine's play loop started, ended (stopped) or failed (with the reason)."""

    type: Literal["play.state"] = "play.state"
    task_id: str
    state: Literal["playing", "stopped", "failed"]
    reason: str | None = None
    position_s: float = 0.0


class Meters(Message):
    """Per-channel levels at >= 20 Hz while playing or rendering; instance reports too."""

    type: Literal["meters"] = "meters"
    task_id: str
    position_s: float
    channels: list[dict[str, float]]
    reports: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: The engine's wall clock when it metered (like an audio frame's ``t``): how stale a
    #: reading is when a console paints it.
    t: float | None = None


class RenderProgress(Message):
    type: Literal["render.progress"] = "render.progress"
    task_id: str
    render_id: str
    progress: float = Field(ge=0.0, le=1.0)
    part: int | None = None


class RenderEnded(Message):
    """A render finished; ``done`` comes after the file chunks, which ``bytes``/``sha256`` check."""

    type: Literal["render.ended"] = "render.ended"
    task_id: str
    render_id: str
    state: Literal["done", "failed", "cancelled"]
    reason: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    part: int | None = None


class InstancesReport(Message):
    """A driver's fixed instances: id, model, params and reports (e.g. gain reduction)."""

    type: Literal["instances"] = "instances"
    instances: list[dict[str, Any]]


class InsertEndpoint(Message):
    """A driver's direct insert link: sent at each registration; never stored or shown."""

    type: Literal["insert.endpoint"] = "insert.endpoint"
    link: InsertLink


register("hub", TaskSpecPush, TaskDrop, PlayStart, PlayStop, RenderStart, RenderCancel,
         InstanceParams)
register("agent", TaskAccepted, TaskRefused, TaskDropped, PlayState, Meters, RenderProgress,
         RenderEnded, InstancesReport, InsertEndpoint)
