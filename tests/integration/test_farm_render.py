"""A task rendered on the farm: a real hub, engine, driver and runner processes.

The file must be byte for byte the engine's own render, whoever renders which chunk: with
every part on its planned runner, with a runner killed or stopped mid-render (its chunks
rendered again elsewhere), and a cancel or a hub restart must stop every part and leave no
stream or partial file.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processes import AgentProcess, HubProcess, wait_until
from runner_farm import Farm, controlroom
from task_calls import TaskCalls

#: 96 tracks are three chunks of the summation tree (32 tracks each).
TRACKS = 96


def farm_spec(duration_s: float) -> dict[str, Any]:
    tracks = [{"id": f"t{i}", "pan": -1 + i / 48, "gain_db": -18,
               "source": {"type": "noise", "seed": i, "level_dbfs": -20,
                          "duration_s": duration_s} if i % 2 else
               {"type": "tone", "freq_hz": 60 + 7 * i, "level_dbfs": -14,
                "duration_s": duration_s},
               "chain": [f"eq{i}"]} for i in range(TRACKS)]
    return {"sample_rate": 48000, "block_size": 1024, "tracks": tracks,
            "instances": {f"eq{i}": {"model": "eq", "params": {"bands": [
                {"type": "peaking", "freq_hz": 200 + 13 * i, "gain_db": 3}]}}
                for i in range(TRACKS)},
            "window": {"start": "2026-12-05T10:00:00Z", "end": "2026-12-05T12:00:00Z"}}


def file_of(calls: TaskCalls, task_id: str, render: dict[str, Any]) -> bytes:
    assert render["state"] == "done", render
    r = calls.call("GET", f"/tasks/{task_id}/renders/{render['render_id']}/file")
    assert r.status_code == 200
    return r.content


def leftovers(hub: HubProcess, task_id: str) -> list[str]:
    """Files of the hub's render store and job artifacts other than finished WAVs."""
    renders = sorted(p.name for p in (hub.data_dir / "renders" / task_id).glob("*")
                     if p.suffix != ".wav")
    chunks = sorted(p.name for p in (hub.data_dir / "jobs").glob("*/artifacts/*"))
    return renders + chunks


def test_a_farm_render_is_the_engine_render_through_lost_runners_cancel_and_restart(
        hub: HubProcess, spawn_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    calls = TaskCalls(hub)
    farm = Farm(hub, spawn_agent, tmp_path)
    spawn_agent(hub, "engine-1", "engine")
    runners = {name: farm.runner(name) for name in ("r1", "r2")}
    for name in runners:
        farm.ready(name)
    hub.wait_state("engine-1", "up")
    task = calls.reserve(farm_spec(30.0))
    reference = calls.render(task["id"], "float32", timeout=60)

    # Named runners, from the command line: one unknown, skipped with the reason; each
    # part on its runner.
    out = tmp_path / "farm.wav"
    cli = controlroom("--data-dir", str(hub.data_dir), "task", "render", task["id"],
                      "-o", str(out), "--format", "float32", "--farm", "r1,r2,r9")
    assert cli.returncode == 0, cli.stderr
    assert "Skipped: r9 (no runner by that name is registered)" in cli.stderr
    assert out.read_bytes() == reference
    done = calls.task(task["id"])["renders"][-1]
    view = done["farm"]
    assert view["chunks"] == 3 and view["assembly"] == 1.0
    assert view["skipped"] == {"r9": "no runner by that name is registered"}
    assert [(p["name"], p["chunks"], p["state"]) for p in view["parts"]] == [
        ("r1", [0], "done"), ("r2", [1], "done"), ("engine", [2], "done")]
    jobs = [calls.call("GET", f"/jobs/{p['job']}").json() for p in view["parts"][:2]]
    assert [(j["runner"], j["state"]) for j in jobs] == [("r1", "succeeded"),
                                                          ("r2", "succeeded")]
    assert leftovers(hub, task["id"]) == []  # the streams are gone once summed
    # Its history: the parts' moves, the sum, then done, and nothing after it.
    history = [e["event"] for e in hub.events(idle=0.3)
               if e["data"]["data"].get("render_id") == done["render_id"]]
    assert history[0] == "task.render" and history[-1] == "task.render_done", history
    assert {"task.render_part", "task.render_assembly"} <= set(history)

    # A runner killed mid-render: its chunk is rendered again (by the engine: r2 is busy).
    rid = calls.start_render(task["id"], "float32", farm={"runners": 2})

    def r1_running() -> bool:
        render = calls.call("GET", f"/tasks/{task['id']}/renders/{rid}").json()
        return bool(render["farm"]["parts"][0]["state"] == "running")

    wait_until(r1_running, 20, "r1's part to run", step=0.02)
    runners["r1"].send(signal.SIGKILL)
    again = calls.finished(task["id"], rid, 90)
    assert file_of(calls, task["id"], again) == reference
    parts = again["farm"]["parts"]
    assert parts[0]["name"] == "r1" and parts[0]["state"] == "lost"
    assert "r1 went down" in parts[0]["reason"]
    assert (parts[-1]["name"], parts[-1]["chunks"], parts[-1]["state"]) == \
        ("engine", [0], "done")

    # A runner SIGSTOPped mid-render: seen down by its missed health checks, its chunks go
    # to the engine; when it is resumed, what its part sent late is dropped.
    rid = calls.start_render(task["id"], "float32", farm={"runners": 1})
    wait_until(lambda: calls.call("GET", f"/tasks/{task['id']}/renders/{rid}").json()
               ["farm"]["parts"][0]["state"] == "running", 20, "r2's part to run")
    runners["r2"].send(signal.SIGSTOP)
    try:
        stopped = calls.finished(task["id"], rid, 60)
    finally:
        runners["r2"].send(signal.SIGCONT)
    assert file_of(calls, task["id"], stopped) == reference
    parts = stopped["farm"]["parts"]
    assert (parts[0]["name"], parts[0]["state"]) == ("r2", "lost")
    assert "r2 went down" in parts[0]["reason"]
    farm.ready("r2")  # ready again on the connection it kept: it takes parts again
    farm.wait(parts[0]["job"], ("succeeded", "cancelled"), timeout=30)
    wait_until(lambda: leftovers(hub, task["id"]) == [], 10, "the late streams dropped")

    # Cancel: every part stops, nothing is left of the render on the hub or the runner.
    rid = calls.start_render(task["id"], "float32", farm={"runners": 1})
    wait_until(lambda: calls.call("GET", f"/tasks/{task['id']}/renders/{rid}").json()
               ["farm"]["parts"][0]["state"] == "running", 20, "r2's part to run")
    r = calls.call("POST", f"/tasks/{task['id']}/renders/{rid}/cancel")
    assert r.status_code == 200, r.text
    cancelled = calls.finished(task["id"], rid)
    assert cancelled["state"] == "cancelled"
    assert {p["state"] for p in cancelled["farm"]["parts"]} == {"cancelled"}
    job = farm.wait(cancelled["farm"]["parts"][0]["job"], "cancelled", timeout=20)
    assert job["runner"] == "r2"
    wait_until(lambda: leftovers(hub, task["id"]) == [], 10, "no stream left on the hub")
    # Nor on the runner: the cancelled part's partial streams, and the streams of its
    # earlier parts once the hub has them.
    wait_until(lambda: not list(runners["r2"].data_dir.rglob("*.f64*")), 10,
               "no stream left on r2")
    assert calls.task(task["id"])["state"] == "ready"

    # The hub killed mid-render: the render fails when it is back, and the part's job
    # (which its runner kept running) is cancelled, its streams deleted.
    rid = calls.start_render(task["id"], "float32", farm={"runners": 1})
    wait_until(lambda: calls.call("GET", f"/tasks/{task['id']}/renders/{rid}").json()
               ["farm"]["parts"][0]["state"] == "running", 20, "r2's part to run")
    job_id = calls.call("GET", f"/tasks/{task['id']}/renders/{rid}").json()["farm"][
        "parts"][0]["job"]
    hub.stop(signal.SIGKILL)
    hub.start()
    failed = calls.finished(task["id"], rid)
    assert failed["state"] == "failed" and failed["error"] == "the hub restarted"
    farm.wait(job_id, "cancelled", timeout=30)
    wait_until(lambda: leftovers(hub, task["id"]) == [], 10, "no stream left on the hub")
    wait_until(lambda: not list(runners["r2"].data_dir.rglob("*.f64*")), 10,
               "no stream left on r2")


def test_a_farm_render_that_cannot_be_planned_says_why(
        hub: HubProcess, spawn_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    calls = TaskCalls(hub)
    spawn_agent(hub, "engine-1", "engine")
    hub.wait_state("engine-1", "up")
    task = calls.reserve(farm_spec(1.0))

    def refused(farm: dict[str, Any], status: int, words: str) -> None:
        r = calls.call("POST", f"/tasks/{task['id']}/render", json={"farm": farm})
        assert r.status_code == status and words in r.text, (farm, r.text)

    refused({"runners": 2}, 409, "no runner is registered")
    refused({"runners": ["r1"]}, 409, "r1: no runner by that name is registered")
    refused({"runners": 0}, 422, "greater than or equal to 1")
    refused({"runners": []}, 422, "at least 1")
    refused({"runners": 2, "spread": True}, 422, "spread")
    # A runner whose CPUs a job holds cannot take a part: skipped, with its free resources.
    farm = Farm(hub, spawn_agent, tmp_path)
    farm.runner("r1")
    threads = farm.ready("r1")["hardware"]["cpu"]["threads"]
    busy = farm.submit(["sleep", "60"], needs={"cpus": threads})
    farm.wait(busy, "running")
    refused({"runners": ["r1"]}, 409, "r1: needs 1 CPUs, 0 free")
    refused({"runners": 1}, 409, "r1: needs 1 CPUs, 0 free")
    farm.call("POST", f"/jobs/{busy}/cancel").raise_for_status()
    assert calls.task(task["id"])["state"] == "ready"


def test_a_chunk_through_a_driver_stays_with_the_engine_and_the_file_is_the_same(
        hub: HubProcess, spawn_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    calls = TaskCalls(hub)
    farm = Farm(hub, spawn_agent, tmp_path)
    for name, kind in (("engine-1", "engine"), ("driver-1", "driver")):
        spawn_agent(hub, name, kind)
    farm.runner("r1")
    farm.ready("r1")
    for name in ("engine-1", "driver-1"):
        hub.wait_state(name, "up")
    spec = farm_spec(2.0)
    spec["tracks"] = spec["tracks"][:40]  # two chunks: tracks 0-31 and 32-39
    spec["instances"] = {f"eq{i}": spec["instances"][f"eq{i}"] for i in range(1, 40)}
    spec["instances"]["driver-1.comp"] = {
        "model": "compressor", "params": {"threshold_db": -30, "ratio": 4},
        "location": {"driver": "driver-1"}}
    spec["tracks"][0]["chain"] = ["driver-1.comp"]
    task = calls.reserve(spec)
    reference = calls.render(task["id"], "float32")
    rid = calls.start_render(task["id"], "float32", farm={"runners": 1})
    done = calls.finished(task["id"], rid)
    assert file_of(calls, task["id"], done) == reference
    assert [(p["name"], p["chunks"]) for p in done["farm"]["parts"]] == [
        ("r1", [1]), ("engine", [0])]
