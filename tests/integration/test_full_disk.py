"""A full disk, for real: each part's data dir on a small tmpfs, filled to the last byte.

The hub (and its embedded node), a standalone node, a runner and the engine each: refuse
new work with a clear error (507 naming what is full and where, or the same sentence as a
job's or a render's reason), keep serving reads, lose nothing already committed, and take
new work again once the filler is deleted, without a restart. One hub serves the module
(its data dir on its own tmpfs); each agent's data dir is a tmpfs of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from node_processes import NodeProcess, Runs, kill_workers
from processes import AgentProcess, HubProcess, wait_until
from runner_farm import FAST, Farm, script
from task_calls import TaskCalls
from tmpfs import Tmpfs, mounted, skip_unless_root

pytestmark = pytest.mark.usefixtures("root")

SPEC: dict[str, Any] = {
    "sample_rate": 48000,
    "block_size": 1024,
    "tracks": [{"id": "tone", "source": {"type": "tone", "freq_hz": 220, "level_dbfs": -12,
                                         "duration_s": 2}, "chain": ["eq1"]}],
    "instances": {"eq1": {"model": "eq"}},
    "window": {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T12:00:00Z"},
}


@pytest.fixture(scope="module")
def root() -> None:
    skip_unless_root()


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Tmpfs]]:
    """One small tmpfs per part, all unmounted at the end (also after a failure)."""
    base = tmp_path_factory.mktemp("disks")
    with ExitStack() as stack:
        yield {name: stack.enter_context(mounted(base / name, size))
               for name, size in (("hub", 48), ("node", 16), ("runner", 8), ("engine", 8))}


@pytest.fixture(scope="module")
def hub(disks: dict[str, Tmpfs]) -> Iterator[HubProcess]:
    hub = HubProcess(disks["hub"].path / "hub").start()
    yield hub
    hub.close()
    kill_workers(hub.data_dir / "node")


@pytest.fixture
def hub_disk(disks: dict[str, Tmpfs]) -> Iterator[Tmpfs]:
    """The hub's disk, given back after the test whatever happened."""
    yield disks["hub"]
    disks["hub"].free()


def insufficient(response: httpx.Response, what: str, where: Path) -> None:
    """A 507 problem whose sentence says what is full, where, and to free space there."""
    assert response.status_code == 507, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Insufficient Storage" and body["where"] == str(where), body
    assert body["detail"].startswith(f"{what} is full: no space left at {where}"), body
    assert f"free space at {where}" in body["detail"], body


def test_a_full_hub_refuses_changes_with_507_serves_reads_and_recovers(
        hub: HubProcess, hub_disk: Tmpfs) -> None:
    api, node_api = f"{hub.url}/api/v1", f"{hub.url}/node/v1"
    runs = Runs(hub.client, node_api, hub.auth)
    before = hub.client.post(f"{api}/tokens", json={"name": "before", "kind": "viewer"})
    assert before.status_code == 201, before.text
    assert hub.client.put(f"{api}/configs/engine-9", json={"gain": 1}).status_code == 200
    job = hub.client.post(f"{api}/jobs", json={"kind": "command",
                                               "payload": {"argv": ["true"]}})
    assert job.status_code == 201, job.text
    fid = runs.start("hello", {"name": "Ada"})
    runs.wait(fid, "done")

    hub_disk.fill()
    where = hub.data_dir
    insufficient(hub.client.post(f"{api}/tokens", json={"name": "during", "kind": "viewer"}),
                 "the hub's data dir", where)
    insufficient(hub.client.put(f"{api}/configs/engine-9", json={"gain": 2}),
                 "the hub's data dir", where)
    insufficient(hub.client.post(f"{api}/jobs", json={"kind": "command",
                                                      "payload": {"argv": ["true"]}}),
                 "the hub's data dir", where)
    insufficient(hub.client.post(f"{api}/tasks", json=SPEC), "the hub's data dir", where)
    insufficient(hub.client.post(f"{node_api}/runs", json={"flow": "hello",
                                                           "inputs": {"name": "Bo"}}),
                 "the node's data dir", where / "node")
    # Only a caller who may change things learns that (and where) the disk is full.
    anonymous = hub.client.post(f"{api}/tasks", json=SPEC, headers={"Authorization": ""})
    assert anonymous.status_code == 401 and str(where) not in anonymous.text, anonymous.text
    viewer = {"Authorization": f"Bearer {before.json()['token']}"}
    refused = hub.client.post(f"{api}/tasks", json=SPEC, headers=viewer)
    assert refused.status_code == 403 and str(where) not in refused.text, refused.text
    # Reads are served (a named token's too), and everything committed before is there.
    assert hub.client.get(f"{api}/health").json()["status"] == "ok"
    assert hub.client.get(f"{api}/tasks", headers=viewer).status_code == 200
    assert [t["name"] for t in hub.client.get(f"{api}/tokens").json()] == ["before"]
    assert hub.client.get(f"{api}/configs/engine-9").json() == {"gain": 1}
    assert hub.client.get(f"{api}/jobs/{job.json()['id']}").json()["state"] == "queued"
    assert runs.state(fid)["result"] == "Hello, Ada!"
    assert any(e["event"] == "token.created" for e in hub.events(idle=0.3))
    # Winding work down needs no room to be accepted.
    cancelled = hub.client.post(f"{api}/jobs/{job.json()['id']}/cancel")
    assert cancelled.status_code in (200, 507), cancelled.text

    hub_disk.free()  # no restart: the next change is served
    after = hub.client.post(f"{api}/tokens", json={"name": "after", "kind": "viewer"})
    assert after.status_code == 201, after.text
    assert hub.client.put(f"{api}/configs/engine-9", json={"gain": 3}).status_code == 200
    assert runs.wait(runs.start("hello", {"name": "Cy"}), "done")["result"] == "Hello, Cy!"
    assert sorted(t["name"] for t in hub.client.get(f"{api}/tokens").json()) == [
        "after", "before"]


def test_a_full_node_refuses_runs_keeps_its_runs_and_recovers(
        hub: HubProcess, disks: dict[str, Tmpfs]) -> None:
    disk = disks["node"]
    node = NodeProcess(hub, "node-full", disk.path / "node").start()
    try:
        runs = Runs(node.client, f"{node.url}/node/v1", node.auth)
        done = runs.start("hello", {"name": "Ada"})
        runs.wait(done, "done")
        chatty = runs.start("chatty", {"events": 200, "every_s": 0.01})
        wait_until(lambda: (runs.state(chatty)["offset"] or 0) > 5, 30, "chatty to log")

        disk.fill()  # while chatty's worker is sending events
        r = node.client.post(f"{node.url}/node/v1/runs", json={"flow": "hello"})
        insufficient(r, "the node's data dir", node.data_dir)
        proxied = hub.client.post(f"{hub.url}/api/v1/nodes/node-full/runs",
                                  json={"flow": "hello"})
        insufficient(proxied, "the node's data dir", node.data_dir)
        assert runs.state(done)["result"] == "Hello, Ada!"
        assert [e["type"] for e in runs.events(done)][-1] == "final"
        wait_until(lambda: "cannot commit" in node.output() or "could not commit"
                   in node.output(), 20, "a commit of chatty's events to hit the full disk")
        assert runs.state(chatty)["state"] == "running"
        # A cancel cannot be recorded: said at once (not an answer held until there is
        # room), and nothing is stopped.
        cancel = node.client.post(f"{node.url}/node/v1/runs/{chatty}/cancel", timeout=5)
        insufficient(cancel, "the node's data dir", node.data_dir)
        assert runs.state(chatty)["state"] == "running"

        disk.free()
        # The run that was writing when the disk filled loses and doubles nothing.
        assert runs.wait(chatty, "done", timeout=60)["result"] == 200
        lines = [e["data"]["message"] for e in runs.events(chatty) if e["type"] == "log"]
        assert lines == [f"line {i}" for i in range(200)]
        assert runs.wait(runs.start("hello", {"name": "Bo"}), "done")["result"] == "Hello, Bo!"
    finally:
        disk.free()
        node.close()
        kill_workers(node.data_dir)


def test_a_full_runner_refuses_jobs_with_the_reason_they_wait_and_then_run(
        hub: HubProcess, disks: dict[str, Tmpfs]) -> None:
    disk = disks["runner"]
    farm = Farm(hub, lambda *a, **k: None, disk.path)
    config = disk.path / "r-full.config.json"
    config.write_text(json.dumps(FAST))
    runner = AgentProcess(hub.url, "runner", "r-full", disk.path / "r-full", hub.enroll("runner"),
                          "--config", str(config))
    try:
        farm.ready("r-full", timeout=60)
        first = farm.submit(script("print('first')"))
        farm.wait(first, "succeeded")

        disk.fill()
        waiting = farm.submit(script("print('second')"))
        refused = wait_until(
            lambda: [e for e in hub.events(idle=0.3) if e["event"] == "job.refused"
                     and e["data"]["subject"] == waiting], 30, "the runner to refuse the job")
        reason = refused[0]["data"]["data"]["reason"]
        where = runner.data_dir
        assert reason.startswith(f"the runner's data dir is full: no space left at {where}")
        assert f"free space at {where}" in reason
        assert farm.job(waiting)["state"] == "queued"
        assert farm.job(first)["state"] == "succeeded" and "first" in farm.logs(first)
        assert not (runner.data_dir / "jobs" / waiting).exists()  # nothing half-made

        disk.free()
        assert farm.wait(waiting, "succeeded", timeout=40)["runner"] == "r-full"
        wait_until(lambda: "second" in farm.logs(waiting), 5, "the second job's output")
    finally:
        disk.free()
        runner.stop()


def test_a_full_engine_fails_a_render_with_the_path_leaves_no_file_and_recovers(
        hub: HubProcess, disks: dict[str, Tmpfs]) -> None:
    disk = disks["engine"]
    engine = AgentProcess(hub.url, "engine", "engine-full", disk.path / "engine",
                          hub.enroll("engine"))
    calls = TaskCalls(hub)
    try:
        hub.wait_state("engine-full", "up", timeout=60)
        task = calls.reserve(SPEC)
        first = calls.render(task["id"])

        disk.fill()
        r = calls.call("POST", f"/tasks/{task['id']}/render", json={"format": "wav24"})
        assert r.status_code == 202, r.text
        rid = r.json()["render_id"]
        failed = wait_until(lambda: (v := calls.call(
            "GET", f"/tasks/{task['id']}/renders/{rid}").json())["state"] != "running" and v,
            30, "the render to end")
        where = engine.data_dir / "renders"
        assert failed["state"] == "failed", failed
        assert f"the engine's data dir is full: no space left at {where}" in failed["error"]
        assert list(where.glob("*.wav")) == []  # no partial file
        assert calls.wait(task["id"], "ready")["state"] == "ready"

        disk.free()
        assert calls.render(task["id"]) == first  # the same spec renders the same bytes
    finally:
        disk.free()
        engine.stop()
