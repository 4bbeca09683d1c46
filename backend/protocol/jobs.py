"""Messages between the hub and runners: start-up, inventory, heartbeat, jobs and logs.

The runner's job reports are journal entries: each carries the job's ``seq`` (1, 2, ...)
and stays in the runner's journal until the hub answers ``job.ack`` with that ``seq``, so a
report lost to a disconnect is sent again and one sent twice is applied once (the hub keeps
the highest ``seq`` it applied). ``docs/runners.md`` has the sequences.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from backend.protocol.messages import Message, register

JobKind = Literal["command", "render"]
EndState = Literal["succeeded", "failed", "cancelled", "timed_out"]

# -- runner -> hub --------------------------------------------------------------------


class RunnerState(Message):
    """The runner's phase: ``starting`` after auth, ``ready`` for jobs, ``shutdown`` on sign-off.

    ``ready`` lists the jobs the runner's journal still holds (not yet acknowledged as
    ended), so the hub can tell an offer that never arrived from one that is running.
    """

    type: Literal["runner.state"] = "runner.state"
    state: Literal["starting", "ready", "shutdown"]
    labels: list[str] = Field(default_factory=list)
    jobs: list[str] = Field(default_factory=list)
    free: dict[str, float] = Field(default_factory=dict)


class RunnerInventory(Message):
    """Hardware: everything (``full``) or only the top-level keys that changed."""

    type: Literal["runner.inventory"] = "runner.inventory"
    full: bool
    hardware: dict[str, Any] = Field(default_factory=dict)
    removed: list[str] = Field(default_factory=list)
    #: Digest of the runner's whole inventory, so the hub can tell it holds a stale copy.
    digest: str


class RunnerHeartbeat(Message):
    type: Literal["runner.heartbeat"] = "runner.heartbeat"
    load: list[float]
    free: dict[str, float]
    running: list[str] = Field(default_factory=list)


class JobRefuse(Message):
    """The runner cannot take an offered job, and why (not journaled: a lost refusal
    leaves the job offered until the runner's next ``ready``, which does not list it)."""

    type: Literal["job.refuse"] = "job.refuse"
    job_id: str
    reason: str


class JobEvent(Message):
    """One journal entry of a job: ``accepted``, ``started``, ``progress`` or ``ended``."""

    type: Literal["job.event"] = "job.event"
    job_id: str
    seq: int = Field(ge=1)
    event: Literal["accepted", "started", "progress", "ended"]
    ts: float
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    state: EndState | None = None
    exit_code: int | None = None
    error: str | None = None
    duration_s: float | None = None
    artifacts: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ended_says_how(self) -> JobEvent:
        """An ``ended`` without its ``state`` used to reach the hub's store and then fail
        to fold: a 1011 at once, and a hub that could not start again after it."""
        if self.event == "ended" and self.state is None:
            raise ValueError("an ended event needs its state")
        return self


class JobOutput(Message):
    """A chunk of a job's output at byte ``offset`` (the hub keeps its copy contiguous)."""

    type: Literal["job.output"] = "job.output"
    job_id: str
    offset: int = Field(ge=0)
    #: The bytes, base64-encoded (output need not be valid UTF-8).
    data: str

    @field_validator("data")
    @classmethod
    def _base64(cls, value: str) -> str:
        """Checked here, so bad base64 is the sender's 4400, not an error in the hub's
        handler (which it was: the connection died with 1011 and a traceback)."""
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("data is not base64") from None
        return value


class RunnerLogs(Message):
    type: Literal["runner.logs"] = "runner.logs"
    request_id: str
    text: str


# -- hub -> runner --------------------------------------------------------------------


class JobOffer(Message):
    """A job with its payload; the runner accepts (``job.event accepted``) or refuses."""

    type: Literal["job.offer"] = "job.offer"
    job_id: str
    kind: JobKind
    needs: dict[str, Any]
    payload: Any
    timeout_s: float | None = None


class JobAck(Message):
    """The hub has applied the job's journal up to ``seq`` and holds ``output_bytes``."""

    type: Literal["job.ack"] = "job.ack"
    job_id: str
    seq: int
    output_bytes: int = 0
    #: Continue the output from ``output_bytes`` (after a reconnect, or on a gap).
    rewind: bool = False


class JobCancel(Message):
    type: Literal["job.cancel"] = "job.cancel"
    job_id: str
    reason: str = "cancelled by the operator"


class InventoryRequest(Message):
    """The hub's copy does not match the runner's digest: send everything."""

    type: Literal["runner.inventory.request"] = "runner.inventory.request"


class RunnerLogsRequest(Message):
    type: Literal["runner.logs.request"] = "runner.logs.request"
    request_id: str
    lines: int = Field(default=200, ge=1, le=10_000)


register("agent", RunnerState, RunnerInventory, RunnerHeartbeat, JobRefuse, JobEvent,
         JobOutput, RunnerLogs)
register("hub", JobOffer, JobAck, JobCancel, InventoryRequest, RunnerLogsRequest)
