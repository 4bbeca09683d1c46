"""Runs survive the node: SIGKILL or restart it and the workers reconnect, nothing lost.

Workers run in their own process session and reconnect to the node's next process (which
may listen on another port: they re-read ``node.url``). Events the worker sent but the
old node never acknowledged are resent, and the node takes each exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_processes import NodeProcess, Runs, alive, kill_workers
from processes import HubProcess


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("hub")).start()
    yield hub
    hub.close()


@pytest.fixture
def node(hub: HubProcess, tmp_path: Path) -> Iterator[NodeProcess]:
    node = NodeProcess(hub, "node-r", tmp_path / "node-r").start()
    yield node
    node.close()


def runs_of(node: NodeProcess) -> Runs:
    return Runs(node.client, f"{node.url}/node/v1", node.auth)


def test_node_sigkill_with_a_run_locked_then_the_lock_is_answered_after_restart(
    node: NodeProcess,
) -> None:
    runs = runs_of(node)
    fid = runs.start("gate", {"release_timeout": 10})
    lock = runs.lock(fid)
    pid = runs.state(fid)["pid"]
    denied = runs.submit(fid, lock["lid"], {"gain_db": 1})
    assert denied.status_code == 422
    node.kill(signal.SIGKILL)
    assert alive(pid), "the worker must outlive its node"

    node.start()
    runs = runs_of(node)
    state = runs.state(fid)
    assert state["state"] == "locked" and state["locks"][0]["lid"] == lock["lid"]
    r = runs.submit(fid, lock["lid"], {"gain_db": -1.5})
    assert r.status_code == 200, r.text
    assert runs.wait(fid, "done")["result"] == {"gain_db": -1.5}
    events = runs.events(fid)
    offsets = [e["offset"] for e in events]
    assert offsets == list(range(1, len(events) + 1))
    assert [e["type"] for e in events].count("status") == 2  # pending + running, once each
    assert [e["data"].get("reason") for e in events if e["type"] == "deny"] == \
        ["positive gain would clip"]


def test_a_flow_that_finishes_while_its_node_is_down_delivers_every_event_after(
    node: NodeProcess,
) -> None:
    """Found by the chaos suite: a worker whose flow ended while its node was away gave
    up at its next failed reconnect (exit 0) with its last events and its result still
    unacknowledged in memory; the node's next process found it gone: ``interrupted``."""
    runs = runs_of(node)
    fid = runs.start("chatty", {"events": 150, "every_s": 0.01})
    runs.wait(fid, "running")
    pid = runs.state(fid)["pid"]
    node.kill(signal.SIGKILL)
    time.sleep(3.0)  # the flow's 1.5 s end while the node is down
    assert alive(pid), "the worker must wait for a node to hand its events to"
    node.start()
    runs = runs_of(node)
    assert runs.wait(fid, "done", "interrupted", "error")["state"] == "done"
    events = runs.events(fid)
    assert [e["offset"] for e in events] == list(range(1, len(events) + 1))
    assert [e["data"]["message"] for e in events if e["type"] == "log"] == \
        [f"line {i}" for i in range(150)]


def test_a_candidate_posted_while_the_worker_is_away_reaches_it_when_it_is_back(
    node: NodeProcess,
) -> None:
    """The candidate is persisted first; the reconnecting worker gets it from the store."""
    runs = runs_of(node)
    fid = runs.start("gate", {"release_timeout": 0.3})
    lock = runs.lock(fid)
    pid = runs.state(fid)["pid"]
    os.kill(pid, signal.SIGSTOP)  # the worker cannot answer now
    try:
        r = runs.submit(fid, lock["lid"], {"gain_db": -3})
        assert r.status_code == 504
    finally:
        os.kill(pid, signal.SIGCONT)
    assert runs.wait(fid, "done")["result"] == {"gain_db": -3.0}


def test_a_restart_mid_stream_loses_and_doubles_nothing(node: NodeProcess) -> None:
    runs = runs_of(node)
    fid = runs.start("chatty", {"events": 400, "every_s": 0.004})
    runs.wait(fid, "running")
    node.kill(signal.SIGTERM)
    node.start()
    runs = runs_of(node)
    assert runs.wait(fid, "done")["result"] == 400
    lines = [e["data"]["message"] for e in runs.events(fid) if e["type"] == "log"]
    assert lines == [f"line {i}" for i in range(400)]


def test_history_and_final_state_survive_a_restart(node: NodeProcess) -> None:
    runs = runs_of(node)
    fid = runs.start("hello", {"name": "persisted"})
    before = runs.wait(fid, "done")
    history = runs.events(fid)
    node.kill(signal.SIGTERM)
    node.start()
    runs = runs_of(node)
    after = runs.state(fid)
    assert after["result"] == before["result"] and after["state"] == "done"
    assert runs.events(fid) == history
    assert runs.events(fid, after=3) == history[3:]


def test_a_worker_that_died_while_the_node_was_down_is_interrupted(node: NodeProcess) -> None:
    runs = runs_of(node)
    fid = runs.start("sleep", {"seconds": 30})
    pid = runs.wait(fid, "running")["pid"]
    node.kill(signal.SIGKILL)
    os.killpg(pid, signal.SIGKILL)
    node.start()
    state = runs_of(node).wait(fid, "interrupted")
    assert f"worker process {pid} is gone" in state["error"]["message"]


def test_a_worker_that_dies_after_the_restart_is_interrupted_too(node: NodeProcess) -> None:
    runs = runs_of(node)
    fid = runs.start("sleep", {"seconds": 30})
    pid = runs.wait(fid, "running")["pid"]
    node.kill(signal.SIGTERM)
    node.start()
    runs = runs_of(node)
    runs.wait(fid, "running")
    os.kill(pid, signal.SIGKILL)
    state = runs.wait(fid, "interrupted")
    assert "exit status is unknown" in state["error"]["message"]
    kill_workers(node.data_dir)
