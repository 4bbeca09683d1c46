"""A job's state, folded from its events; and which commands each state allows.

The hub keeps no job state of its own: it appends events and folds them (:func:`apply`),
so the state survives a restart and the rules live here, pure, tested without sockets.

Hub events: ``submitted``, ``waiting`` (why no runner takes it), ``offered`` (to one
runner at a time), ``refused`` (by that runner, with the reason), ``withdrawn`` (the
offer never reached the runner; back to the queue), ``cancel_requested``, ``cancelled``
(a job no runner had), ``lost`` (its runner stayed away longer than the lease).
Runner reports arrive as ``report`` events carrying the runner's journal ``seq``: one at
or below the job's last applied ``seq`` is a duplicate and changes nothing.

States: ``queued``, ``running``, ``succeeded``, ``failed``, ``cancelled``,
``timed_out``, ``lost``. ``lost`` is final unless the runner later reports the real
outcome, which replaces it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    LOST = "lost"


#: States nothing changes any more (``lost`` is not one: a real outcome may replace it).
FINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED,
                   JobState.TIMED_OUT})


class Conflict(Exception):
    """A command the job's current state does not allow (HTTP 409)."""


@dataclass
class Job:
    id: str
    kind: str
    needs: dict[str, Any]
    payload: Any
    timeout_s: float | None
    created_at: float
    state: JobState = JobState.QUEUED
    progress: float = 0.0
    runner: str | None = None
    offered_to: str | None = None
    refused: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    exit_code: int | None = None
    error: str | None = None
    seq: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    artifacts: list[str] = field(default_factory=list)
    cancel_requested: str | None = None
    replaced_lost: bool = False
    #: ``started`` reports applied: how many times a runner started the job's program.
    attempts: int = 0

    @property
    def bound_to(self) -> str | None:
        """The runner that has (or may have) the job: it runs there or was offered there."""
        return self.runner or self.offered_to

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "state": self.state.value,
            "progress": round(self.progress, 4), "runner": self.runner,
            "exit_code": self.exit_code, "error": self.error, "reason": self.reason,
            "needs": self.needs, "payload": self.payload, "timeout_s": self.timeout_s,
            "offered_to": self.offered_to, "created_at": self.created_at,
            "started_at": self.started_at, "ended_at": self.ended_at,
            "duration_s": self.duration_s, "artifacts": self.artifacts,
            "attempts": self.attempts,
            "cancel_requested": self.cancel_requested is not None,
            "commands": allowed_commands(self.state),
        }


_ALLOWED: dict[str, tuple[JobState, ...]] = {
    "cancel": (JobState.QUEUED, JobState.RUNNING),
}


def allowed_commands(state: JobState) -> list[str]:
    """The commands the hub accepts for a job in ``state``, sorted.

    Every job view carries them, so a console offers exactly what this hub's guard lets
    through, instead of keeping its own copy of the table (which would go wrong against a
    hub of another version).
    """
    return sorted(command for command, states in _ALLOWED.items() if state in states)


def require(job: Job, command: str) -> None:
    """Raise :class:`Conflict` unless ``command`` makes sense in the job's state."""
    if job.state not in _ALLOWED[command]:
        raise Conflict(f"cannot {command} job {job.id}: it is already {job.state.value}")


def is_duplicate(job: Job, seq: int) -> bool:
    """A runner report this job has already applied."""
    return seq <= job.seq


def apply(job: Job | None, event: dict[str, Any]) -> Job:
    """Fold one event into the job (``None`` before ``submitted``); returns the job."""
    kind = event["type"]
    ts = float(event.get("ts", 0.0))
    if kind == "submitted":
        return Job(id=event["job_id"], kind=event["kind"], needs=dict(event["needs"]),
                   payload=event["payload"], timeout_s=event.get("timeout_s"), created_at=ts)
    if job is None:
        raise ValueError(f"event {kind} before submitted")
    if kind == "waiting":
        job.reason = event["reason"]
    elif kind == "offered":
        job.offered_to, job.reason = event["runner"], f"offered to {event['runner']}"
        job.seq = 0  # report numbers are per runner journal: a new offer starts afresh
    elif kind == "refused":
        job.refused[event["runner"]] = event["reason"]
        if job.offered_to == event["runner"]:
            job.offered_to = None
        job.reason = f"{event['runner']} refused: {event['reason']}"
    elif kind == "withdrawn":
        if job.state is JobState.QUEUED:
            job.offered_to, job.reason = None, event["reason"]
    elif kind == "cancel_requested":
        job.cancel_requested = event["reason"]
    elif kind == "cancelled":
        if job.state is JobState.QUEUED:
            job.state, job.error, job.ended_at = JobState.CANCELLED, event["reason"], ts
            job.offered_to = None
    elif kind == "lost":
        if job.state in (JobState.RUNNING, JobState.QUEUED) and job.bound_to is not None:
            job.runner = job.bound_to
            job.offered_to = None
            job.state, job.error, job.ended_at = JobState.LOST, event["reason"], ts
    elif kind == "report":
        _report(job, event, ts)
    else:
        raise ValueError(f"unknown job event {kind!r}")
    return job


def _report(job: Job, event: dict[str, Any], ts: float) -> None:
    seq = int(event["seq"])
    if is_duplicate(job, seq):
        return
    job.seq = seq
    what = event["event"]
    if what == "accepted":
        if job.state is JobState.QUEUED:
            job.state, job.runner, job.offered_to = JobState.RUNNING, event["runner"], None
            job.reason = None
    elif what == "started":
        job.started_at = event.get("at", ts)
        job.attempts += 1
    elif what == "progress":
        if job.state is JobState.RUNNING and event.get("progress") is not None:
            job.progress = float(event["progress"])
    elif what == "ended":
        if job.state not in (JobState.RUNNING, JobState.LOST):
            return
        if job.state is JobState.LOST:
            job.replaced_lost = True
        job.runner = job.runner or event["runner"]
        job.offered_to = None
        job.state = JobState(event["state"])
        job.exit_code = event.get("exit_code")
        job.error = event.get("error")
        job.duration_s = event.get("duration_s")
        job.artifacts = list(event.get("artifacts") or [])
        job.ended_at = ts
        job.reason = None
        if job.state is JobState.SUCCEEDED:
            job.progress = 1.0
