"""Nothing lost, nothing doubled: hub restarts, runner kills, sign-off, leases, placement."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from processes import AgentProcess, HubProcess, wait_until
from runner_farm import Farm, controlroom, script


@pytest.fixture
def farm(hub: HubProcess, spawn_agent: Callable[..., AgentProcess], tmp_path: Path) -> Farm:
    return Farm(hub, spawn_agent, tmp_path)


def stepper(seconds: float, steps: int = 10) -> list[str]:
    return script("import time", f"for i in range(1, {steps + 1}):",
                  f"    time.sleep({seconds / steps}); print(f'progress {{i / {steps}}}', "
                  "flush=True)")


def ended_events(farm: Farm, job_id: str) -> list[dict[str, object]]:
    return [e for e in farm.job_events(job_id) if e["event"] == "job.report"
            and e["data"]["data"].get("event") == "ended"]


def test_hub_restart_mid_job_keeps_progress_and_applies_the_result_once(farm: Farm) -> None:
    farm.runner("r1")
    farm.ready("r1")
    job_id = farm.submit(stepper(3.0))
    before = farm.wait(job_id, "running", check=lambda j: j["progress"] >= 0.2)
    farm.hub.stop()
    time.sleep(0.8)  # the job keeps going while the hub is away
    farm.hub.start()
    again = farm.job(job_id)
    assert again["progress"] >= before["progress"]  # nothing applied was lost
    done = farm.wait(job_id, "succeeded", timeout=20)
    assert done["runner"] == "r1"
    assert len(ended_events(farm, job_id)) == 1
    wait_until(lambda: "progress 1.0" in farm.logs(job_id), 5, "the whole output")
    assert farm.logs(job_id).count("progress 0.5\n") == 1  # output neither lost nor doubled


def test_runner_sigkill_and_restart_mid_job_finds_the_outcome_in_its_journal(
        farm: Farm, tmp_path: Path) -> None:
    runner = farm.runner("r1")
    farm.ready("r1")
    marker = tmp_path / "ran.txt"
    job_id = farm.submit(script(
        "import time", f"open({str(marker)!r}, 'a').write('x')",
        "for i in range(1, 11):", "    time.sleep(0.15); print(f'progress {i/10}', flush=True)",
        "raise SystemExit(4)"))
    farm.wait(job_id, "running", check=lambda j: j["progress"] > 0)
    runner.send(signal.SIGKILL)
    runner.wait()
    time.sleep(2.0)  # the job ends while its runner is dead
    farm.runner("r1", token=None)
    done = farm.wait(job_id, "failed", timeout=20)
    assert done["exit_code"] == 4 and done["error"] == "exit code 4"
    assert marker.read_text() == "x"  # it ran exactly once
    assert len(ended_events(farm, job_id)) == 1
    assert (tmp_path / "agents" / "r1" / "archive" / job_id / "exit.json").exists()


def test_sigterm_signs_off_without_killing_the_job_and_the_result_arrives_later(
        farm: Farm) -> None:
    runner = farm.runner("r1")
    farm.ready("r1")
    job_id = farm.submit(stepper(2.0, steps=4))
    farm.wait(job_id, "running", check=lambda j: j["progress"] > 0)
    runner.send(signal.SIGTERM)
    assert runner.wait() == 0
    view = farm.call("GET", "/runners/r1").json()
    assert view["phase"] == "shutdown" and view["state"] == "down"
    assert farm.job(job_id)["state"] == "running"
    time.sleep(2.0)
    farm.runner("r1", token=None)
    done = farm.wait(job_id, "succeeded", timeout=20)
    assert done["progress"] == 1.0 and len(ended_events(farm, job_id)) == 1


def test_a_runner_away_longer_than_the_lease_loses_its_job_until_it_reports(
        start_hub: Callable[..., HubProcess], spawn_agent: Callable[..., AgentProcess],
        tmp_path: Path) -> None:
    hub = start_hub("--runner-lease", "1")
    farm = Farm(hub, spawn_agent, tmp_path)
    runner = farm.runner("r1")
    farm.ready("r1")
    job_id = farm.submit(stepper(2.5, steps=5))
    farm.wait(job_id, "running", check=lambda j: j["progress"] > 0)
    runner.send(signal.SIGKILL)
    runner.wait()
    lost = farm.wait(job_id, "lost", timeout=10)
    assert "away longer than the 1 s lease (while running it)" in lost["error"]
    farm.runner("r1", token=None)
    done = farm.wait(job_id, "succeeded", timeout=20)
    assert done["error"] is None
    states = [e["data"]["data"]["state"] for e in farm.job_events(job_id)]
    assert states.count("lost") >= 1 and states[-1] == "succeeded"


def test_twenty_jobs_over_two_runners_each_run_once_on_a_runner_that_fits(
        farm: Farm, tmp_path: Path) -> None:
    farm.runner("small", labels="linux")
    farm.runner("gpu", labels="linux,gpu")
    farm.ready("small")
    farm.ready("gpu")
    ledger = tmp_path / "ledger.txt"
    jobs: dict[str, dict[str, object]] = {}
    for i in range(20):
        needs: dict[str, object] = {"cpus": 0.5 if i % 3 else 1, "labels": ["linux"]}
        if i % 4 == 0:
            needs["labels"] = ["gpu"]
        job_id = farm.submit(script(
            "import os, time", f"open({str(ledger)!r}, 'a').write('{i} ' + "
            "os.environ.get('RUNNER', '?') + '\\n')", "time.sleep(0.2)"), needs=needs)
        jobs[job_id] = needs
    for job_id, needs in jobs.items():
        done = farm.wait(job_id, "succeeded", timeout=60)
        if "gpu" in needs["labels"]:  # type: ignore[operator]
            assert done["runner"] == "gpu"
    runs = Counter(line.split()[0] for line in ledger.read_text().splitlines())
    assert sorted(runs) == sorted(str(i) for i in range(20))
    assert set(runs.values()) == {1}
    assert {farm.job(j)["runner"] for j in jobs} == {"small", "gpu"}


def test_revoked_runner_is_disconnected_and_its_secret_refused(farm: Farm) -> None:
    runner = farm.runner("r1")
    farm.ready("r1")
    r = farm.call("DELETE", "/runners/r1")
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert runner.wait() == 2
    assert "agent credentials revoked" in runner.output()
    again = farm.runner("r1", token=None)
    assert again.wait() == 2
    assert "agent credentials revoked" in again.output()


def test_a_wrong_secret_is_refused(farm: Farm, tmp_path: Path) -> None:
    runner = farm.runner("r1")
    farm.ready("r1")
    runner.stop()
    path = tmp_path / "agents" / "r1" / "credentials.json"
    creds = json.loads(path.read_text())
    creds["secret"] = "crs_" + "x" * 43
    path.write_text(json.dumps(creds))
    again = farm.runner("r1", token=None)
    assert again.wait() == 2
    assert "wrong secret" in again.output()


def test_runner_stop_command_signs_off_and_exits_zero(farm: Farm, tmp_path: Path) -> None:
    runner = farm.runner("r1")
    farm.ready("r1")
    result = controlroom("runner", "stop", "--data-dir", str(tmp_path / "agents" / "r1"))
    assert result.returncode == 0, result.stderr
    assert runner.wait() == 0
    assert farm.call("GET", "/runners/r1").json()["phase"] == "shutdown"
