"""Job reports with bad sequence numbers, fuzzed through a runner's channel.

A fuzz runner (a raw WebSocket, enrolled as kind ``runner``) takes each job the hub
offers it and sends Hypothesis-made reports: replayed, out of order, with gaps, zero,
negative and huge ``seq``; for other jobs; output at odd offsets and bad base64. The hub
must apply each ``seq`` once and acknowledge the highest it holds, refuse what the protocol
refuses with 4400 (the runner reconnects and resumes from the hub's ack), answer the job's
state over HTTP at every step, and log no exception. The plain tests reproduce the two
failures it found.
"""

from __future__ import annotations

import json

from fuzzing import FuzzHub, FuzzRunner, drain, fuzz_jobs, tracebacks

from backend.protocol import closecodes

CI_SEED = 20261204
RUNNER = "fzr-ci"


def test_job_reports_with_bad_sequence_numbers_are_applied_once(fuzz_hub: FuzzHub) -> None:
    print(f"hypothesis seed {CI_SEED}")
    runner = FuzzRunner(fuzz_hub.fuzz, RUNNER)
    log_at = fuzz_hub.log.stat().st_size

    fuzz_jobs(runner, CI_SEED, 5)
    assert tracebacks(fuzz_hub.log, log_at) == []
    fuzz_hub.fuzz.healthy()


# -- the failures it found, reproduced without it ----------------------------------------


def _accepted(fuzz_hub: FuzzHub, name: str) -> tuple[FuzzRunner, str]:
    runner = FuzzRunner(fuzz_hub.fuzz, name)
    job_id = runner.take_offer()
    runner.connected().ws.send(json.dumps({"type": "job.event", "job_id": job_id, "seq": 1,
                                           "event": "accepted", "ts": 1.0}))
    assert runner.ack_for(job_id)["seq"] == 1
    return runner, job_id


def test_output_that_is_not_base64_is_refused_not_a_crash(fuzz_hub: FuzzHub) -> None:
    """Found: ``job.output`` with ``data: "a"`` for the runner's own job raised
    binascii.Error in the hub's handler; the connection died with 1011 and a traceback."""
    log_at = fuzz_hub.log.stat().st_size
    runner, job_id = _accepted(fuzz_hub, "fzr-b64")
    conn = runner.connected()
    conn.ws.send(json.dumps({"type": "job.output", "job_id": job_id, "offset": 0,
                             "data": "a"}))
    drain(conn, 5)
    assert (conn.closed, conn.reason) == (
        closecodes.INVALID_MESSAGE, "invalid job.output: data: Value error, data is not base64")
    runner.close()
    assert tracebacks(fuzz_hub.log, log_at) == []


def test_an_ended_report_without_its_state_is_refused(fuzz_hub: FuzzHub) -> None:
    """Found: ``job.event`` ``ended`` without ``state`` was stored in ``job_events`` and
    then failed to fold (KeyError): a 1011 at once, and a hub that could not load its
    jobs, so not start, ever after."""
    log_at = fuzz_hub.log.stat().st_size
    runner, job_id = _accepted(fuzz_hub, "fzr-ended")
    conn = runner.connected()
    conn.ws.send(json.dumps({"type": "job.event", "job_id": job_id, "seq": 2,
                             "event": "ended", "ts": 2.0}))
    drain(conn, 5)
    assert conn.closed == closecodes.INVALID_MESSAGE
    assert "an ended event needs its state" in conn.reason
    assert runner.ack_for(job_id)["seq"] == 1  # nothing was applied
    view = runner.fuzz_http("GET", f"/api/v1/jobs/{job_id}").json()
    assert view["state"] == "running"
    runner.close()
    assert tracebacks(fuzz_hub.log, log_at) == []
