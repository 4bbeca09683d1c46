"""Jobs end to end: a real hub and real runner processes; every job runs under its shim."""

from __future__ import annotations

import io
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import soundfile as sf
from processes import AgentProcess, HubProcess, wait_until
from runner_farm import Farm, script


@pytest.fixture
def farm(hub: HubProcess, spawn_agent: Callable[..., AgentProcess], tmp_path: Path) -> Farm:
    return Farm(hub, spawn_agent, tmp_path)


def test_a_command_job_reports_progress_output_and_its_exit_code(farm: Farm) -> None:
    farm.runner("r1")
    farm.ready("r1")
    job_id = farm.submit(script(
        "import time",
        "for i in range(1, 5):",
        "    print(f'progress {i / 5}', flush=True); time.sleep(0.25)",
        "print('all done')"))
    running = farm.wait(job_id, "running", check=lambda j: j["progress"] >= 0.4)
    assert running["runner"] == "r1" and running["progress"] < 1
    assert job_id in farm.call("GET", "/runners/r1").json()["jobs"]
    done = farm.wait(job_id, "succeeded")
    assert done["exit_code"] == 0 and done["progress"] == 1.0 and done["duration_s"] > 0.5
    wait_until(lambda: "all done" in farm.logs(job_id), 5, "the complete output")
    assert farm.logs(job_id).count("progress 0.2") == 1

    failing = farm.submit(script("import sys; print('bad'); sys.exit(3)"))
    failed = farm.wait(failing, "failed")
    assert failed["exit_code"] == 3 and failed["error"] == "exit code 3"
    assert farm.call("GET", "/jobs").json()[0]["id"] == job_id


def test_bad_requests_name_the_field_and_need_the_operator_token(farm: Farm) -> None:
    bad = [({"kind": "bake", "payload": {}}, "kind"),
           ({"kind": "command", "payload": {"argv": []}}, "argv"),
           ({"kind": "command", "payload": {"argv": ["x"]}, "needs": {"cpus": -1}}, "cpus"),
           ({"kind": "command", "payload": {"argv": ["x"]}, "timeout_s": 0}, "timeout_s"),
           ({"kind": "render", "payload": {"spec": {"tracks": "no"}}}, "spec")]
    for body, field in bad:
        r = farm.call("POST", "/jobs", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in json.dumps(r.json()["detail"]), (field, r.text)
    r = farm.hub.client.post(f"{farm.hub.url}/api/v1/jobs",
                             json={"kind": "command", "payload": {"argv": ["true"]}},
                             headers={"Authorization": ""})
    assert r.status_code == 401
    assert farm.call("GET", "/jobs/j_000000000000").status_code == 404


def test_a_job_no_runner_can_take_waits_with_the_reason_then_runs(farm: Farm) -> None:
    job_id = farm.submit(["true"], needs={"cpus": 0, "labels": ["gpu"]})
    assert farm.wait(job_id, "queued", check=lambda j: j["reason"] == "no runner is ready")
    farm.runner("r1")
    farm.ready("r1")
    farm.wait(job_id, "queued", check=lambda j: "r1 lacks label gpu" in (j["reason"] or ""))
    big = farm.submit(["true"], needs={"cpus": 4096})
    farm.wait(big, "queued", check=lambda j: "needs 4096 CPUs" in (j["reason"] or ""))
    farm.runner("r2", labels="gpu")
    assert farm.wait(job_id, "succeeded")["runner"] == "r2"
    assert farm.job(big)["state"] == "queued"
    assert farm.call("POST", f"/jobs/{big}/cancel").json()["state"] == "cancelled"
    assert farm.call("POST", f"/jobs/{big}/cancel").status_code == 409


def test_cancel_terminates_then_kills_and_a_timeout_is_marked(farm: Farm) -> None:
    farm.runner("r1")
    farm.ready("r1")
    polite = farm.submit(script("import time", "print('up', flush=True)", "time.sleep(60)"))
    stubborn = farm.submit(script(
        "import signal, time", "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
        "print('up', flush=True)", "time.sleep(60)"))
    slow = farm.submit(script("import time", "time.sleep(60)"), timeout_s=1.0)
    for job_id in (polite, stubborn):
        farm.wait(job_id, "running", check=lambda j: j["started_at"] is not None)
        wait_until(lambda j=job_id: "up" in farm.logs(j), 10, "the job to start")
    began = time.monotonic()
    assert farm.call("POST", f"/jobs/{polite}/cancel").status_code == 200
    assert farm.call("POST", f"/jobs/{stubborn}/cancel").status_code == 200
    cancelled = farm.wait(polite, "cancelled", timeout=10)
    assert cancelled["exit_code"] == -signal.SIGTERM
    killed = farm.wait(stubborn, "cancelled", timeout=10)
    assert killed["exit_code"] == -signal.SIGKILL and time.monotonic() - began >= 0.9
    timed_out = farm.wait(slow, "timed_out", timeout=10)
    assert timed_out["error"] == "timed out after 1 s"


def test_logs_follow_streams_output_while_running_and_ends(farm: Farm) -> None:
    farm.runner("r1")
    farm.ready("r1")
    job_id = farm.submit(script("import time", "for i in range(6):",
                                "    print(f'line {i}', flush=True); time.sleep(0.2)"))
    texts, end = [], None
    with farm.hub.client.stream("GET", f"{farm.hub.url}/api/v1/jobs/{job_id}/logs",
                                params={"follow": 1}, timeout=httpx.Timeout(20)) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if event == "output":
                    texts.append(data["text"])
                else:
                    end = data
                    break
    assert "".join(texts) == "".join(f"line {i}\n" for i in range(6))
    assert len(texts) > 1  # it arrived in pieces, while the job ran
    assert end == {"state": "succeeded", "exit_code": 0}


def test_a_render_job_renders_with_the_audio_core_and_the_hub_serves_the_file(
        farm: Farm) -> None:
    farm.runner("r1")
    farm.ready("r1")
    spec = {"sample_rate": 48000, "block_size": 1024,
            "tracks": [{"id": "tone", "source": {"type": "tone", "freq_hz": 440, "level_dbfs": -6,
                                                 "duration_s": 2}, "chain": ["eq1"]}],
            "instances": {"eq1": {"model": "eq"}},
            "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"}}
    job_id = farm.submit(kind="render", payload={"spec": spec, "name": "mix.wav"})
    done = farm.wait(job_id, "succeeded", timeout=60)
    assert done["artifacts"] == ["mix.wav"] and done["progress"] == 1.0
    r = farm.call("GET", f"/jobs/{job_id}/artifacts/mix.wav")
    assert r.status_code == 200
    audio, rate = sf.read(io.BytesIO(r.content))
    assert rate == 48000 and audio.shape == (96000, 2) and abs(audio).max() > 0.1
    assert farm.call("GET", f"/jobs/{job_id}/artifacts/other.wav").status_code == 404
    forged = farm.hub.client.put(f"{farm.hub.url}/api/v1/jobs/{job_id}/artifacts/mix.wav",
                                 content=b"x", headers={"X-Agent-Id": "ag_0",
                                                        "X-Agent-Secret": "crs_x"})
    assert forged.status_code == 401


def test_render_parts_on_two_runners_assemble_into_the_one_process_render(
        farm: Farm, tmp_path: Path) -> None:
    """Farm parts as runner jobs: each renders its chunks to float64 artifacts, and their
    sum in chunk order is byte for byte the audio core's render of the whole task."""
    from backend.audio import Graph, TaskSpec, render
    from backend.audio.farm import assemble

    tracks = [{"id": f"t{i}", "pan": -1 + i / 20, "gain_db": -12,
               "source": {"type": "noise", "seed": i, "level_dbfs": -18, "duration_s": 1}
               if i % 2 else {"type": "tone", "freq_hz": 100 + 11 * i, "level_dbfs": -12,
                              "duration_s": 1},
               **({"chain": [f"eq{i}"]} if i % 3 == 0 else {})} for i in range(40)]
    spec = {"sample_rate": 48000, "block_size": 1024, "tracks": tracks,
            "instances": {f"eq{i}": {"model": "eq", "params": {"bands": [
                {"type": "peaking", "freq_hz": 300 + 10 * i, "gain_db": 4}]}}
                for i in range(0, 40, 3)},
            "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"}}
    wrong = farm.call("POST", "/jobs", json={"kind": "render", "payload": {
        "spec": spec, "chunks": [0, 2]}})
    assert wrong.status_code == 422 and "chunk 2 does not exist" in wrong.text
    for name in ("r1", "r2"):
        farm.runner(name)
        farm.ready(name)
    # Each part pinned to its runner by the label every runner carries, runner.<name>.
    jobs = [farm.submit(kind="render", needs={"cpus": 0, "labels": [f"runner.{name}"]},
                        payload={"spec": spec, "chunks": [chunk]})
            for chunk, name in ((0, "r2"), (1, "r1"))]
    nowhere = farm.submit(kind="render", needs={"cpus": 0, "labels": ["runner.r9"]},
                          payload={"spec": spec, "chunks": [0]})
    files = []
    for chunk, job_id in enumerate(jobs):
        done = farm.wait(job_id, "succeeded", timeout=60)
        assert done["runner"] == ("r2", "r1")[chunk]
        assert done["artifacts"] == [f"chunk-{chunk}.f64"]
        r = farm.call("GET", f"/jobs/{job_id}/artifacts/chunk-{chunk}.f64")
        assert r.status_code == 200 and len(r.content) == 48000 * 16
        files.append(tmp_path / f"chunk-{chunk}.f64")
        files[-1].write_bytes(r.content)
    assemble(files, tmp_path / "farm.wav", 48000, 8192, "float32")
    with Graph(TaskSpec.model_validate(spec)) as graph:
        assert len(graph.chunks) == 2
        render(graph, tmp_path / "one.wav", "float32")
    assert (tmp_path / "farm.wav").read_bytes() == (tmp_path / "one.wav").read_bytes()
    waiting = farm.call("GET", f"/jobs/{nowhere}").json()
    assert waiting["state"] == "queued" and "lacks label runner.r9" in waiting["reason"]


def test_a_job_runs_in_its_own_session_at_lower_priority(farm: Farm, tmp_path: Path) -> None:
    runner = farm.runner("r1")
    farm.ready("r1")
    out = tmp_path / "ids.json"
    job_id = farm.submit(script(
        "import json, os, sys, time",
        f"json.dump({{'sid': os.getsid(0), 'nice': os.nice(0)}}, open({str(out)!r}, 'w'))",
        "time.sleep(0.5)"))
    farm.wait(job_id, "succeeded")
    ids = json.loads(out.read_text())
    import os

    assert ids["sid"] != os.getsid(runner.proc.pid)
    assert ids["nice"] >= 10
    assert sys.platform == "linux"
