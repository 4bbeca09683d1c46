"""The job fold: states from events alone, each runner report applied once."""

from __future__ import annotations

from typing import Any

import pytest

from backend.hub.jobs.state import (
    Conflict,
    Job,
    JobState,
    allowed_commands,
    apply,
    require,
)


def fold(*events: dict[str, Any]) -> Job:
    job = None
    for ts, event in enumerate(events):
        job = apply(job, {"ts": float(ts), **event})
    assert job is not None
    return job


SUBMIT = {"type": "submitted", "job_id": "j_1", "kind": "command",
          "needs": {"cpus": 1}, "payload": {"argv": ["true"]}, "timeout_s": None}


def report(seq: int, event: str, **data: Any) -> dict[str, Any]:
    return {"type": "report", "runner": "r1", "seq": seq, "event": event, **data}


def test_a_job_runs_reports_progress_and_succeeds() -> None:
    job = fold(SUBMIT, {"type": "offered", "runner": "r1"})
    assert job.state is JobState.QUEUED and job.bound_to == "r1"
    job = fold(SUBMIT, {"type": "offered", "runner": "r1"}, report(1, "accepted"),
               report(2, "started"), report(3, "progress", progress=0.4))
    assert job.state is JobState.RUNNING and job.runner == "r1" and job.progress == 0.4
    job = apply(job, {"ts": 9.0, **report(4, "ended", state="succeeded", exit_code=0,
                                                duration_s=1.5)})
    assert job.state is JobState.SUCCEEDED and job.progress == 1.0 and job.exit_code == 0
    assert job.view()["state"] == "succeeded"


def test_a_report_seen_before_changes_nothing() -> None:
    job = fold(SUBMIT, {"type": "offered", "runner": "r1"}, report(1, "accepted"),
               report(2, "progress", progress=0.5))
    job = apply(job, {"ts": 5.0, **report(2, "progress", progress=0.9)})
    job = apply(job, {"ts": 6.0, **report(1, "accepted")})
    assert job.progress == 0.5 and job.seq == 2


def test_refusal_frees_the_job_for_another_runner_with_the_reason_visible() -> None:
    job = fold(SUBMIT, {"type": "offered", "runner": "r1"},
               {"type": "refused", "runner": "r1", "reason": "needs 8 CPUs, 4 free"})
    assert job.state is JobState.QUEUED and job.bound_to is None
    assert job.reason == "r1 refused: needs 8 CPUs, 4 free"
    job = apply(job, {"ts": 3.0, "type": "waiting", "reason": "no runner is ready"})
    assert job.view()["reason"] == "no runner is ready"


def test_lost_is_replaced_once_by_the_real_outcome() -> None:
    job = fold(SUBMIT, {"type": "offered", "runner": "r1"}, report(1, "accepted"),
               {"type": "lost", "reason": "runner r1 was away longer than the lease"})
    assert job.state is JobState.LOST and "lease" in (job.error or "")
    job = apply(job, {"ts": 7.0, **report(2, "ended", state="failed", exit_code=3,
                                                error="exit code 3")})
    assert job.state is JobState.FAILED and job.replaced_lost and job.exit_code == 3
    job = apply(job, {"ts": 8.0, **report(3, "ended", state="succeeded", exit_code=0)})
    assert job.state is JobState.FAILED  # final: nothing replaces it


def test_an_offer_that_never_arrived_is_withdrawn_back_to_the_queue() -> None:
    job = fold(SUBMIT, {"type": "offered", "runner": "r1"},
               {"type": "withdrawn", "reason": "the offer did not reach r1"})
    assert job.state is JobState.QUEUED and job.bound_to is None


def test_cancel_is_allowed_only_while_queued_or_running() -> None:
    job = fold(SUBMIT, {"type": "cancelled", "reason": "cancelled by the operator"})
    assert job.state is JobState.CANCELLED
    with pytest.raises(Conflict, match="already cancelled"):
        require(job, "cancel")
    running = fold(SUBMIT, {"type": "offered", "runner": "r1"}, report(1, "accepted"),
                   {"type": "cancel_requested", "reason": "stop"})
    require(running, "cancel")
    assert running.view()["cancel_requested"] is True
    ended = apply(running, {"ts": 9.0, **report(2, "ended", state="cancelled", error="stop")})
    assert ended.state is JobState.CANCELLED


@pytest.mark.parametrize("state", list(JobState))
def test_the_view_carries_the_commands_its_state_allows(state: JobState) -> None:
    job = fold(SUBMIT)
    job.state = state
    expected = ["cancel"] if state in (JobState.QUEUED, JobState.RUNNING) else []
    assert allowed_commands(state) == job.view()["commands"] == expected
    if expected:
        require(job, "cancel")
    else:
        with pytest.raises(Conflict):
            require(job, "cancel")


def test_events_before_submitted_or_unknown_are_errors() -> None:
    with pytest.raises(ValueError):
        apply(None, {"type": "offered", "runner": "r1"})
    with pytest.raises(ValueError):
        fold(SUBMIT, {"type": "bogus"})


def test_report_numbers_start_afresh_with_each_offer() -> None:
    """A runner's journal numbers its own reports; a job offered again to another runner
    (the first never got it) takes that runner's numbers from 1."""
    job = fold(SUBMIT, {"type": "offered", "runner": "r1"}, report(1, "accepted"),
               {"type": "lost", "reason": "gone"})
    job = fold(SUBMIT, {"type": "offered", "runner": "r1"},
               {"type": "withdrawn", "reason": "the offer did not reach r1"},
               {"type": "offered", "runner": "r2"},
               {"type": "report", "runner": "r2", "seq": 1, "event": "accepted"})
    assert job.state is JobState.RUNNING and job.runner == "r2" and job.seq == 1


def test_attempts_count_the_started_reports_applied_once_each() -> None:
    """The chaos suite checks a job's program ran as often as the hub recorded it starting;
    the hub's event log cannot say (an event is lost if the hub dies between storing the
    report and logging it), so the job's own fold counts them, repeats ignored."""
    job = fold(SUBMIT, {"type": "offered", "runner": "r1"}, report(1, "accepted"))
    assert job.view()["attempts"] == 0
    job = fold(SUBMIT, {"type": "offered", "runner": "r1"}, report(1, "accepted"),
               report(2, "started"), report(2, "started"), report(3, "ended",
                                                                   state="succeeded"))
    assert job.view()["attempts"] == 1
