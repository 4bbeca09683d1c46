"""Nested runs across two nodes: children in the parent's state, a child's lock answered
through the parent, results gathered, cancellation passed down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from node_processes import NodeProcess, Runs
from processes import HubProcess, wait_until


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, ...]]:
    root: Path = tmp_path_factory.mktemp("nested")
    hub = HubProcess(root / "hub").start()
    a = NodeProcess(hub, "node-a", root / "node-a").start()
    b = NodeProcess(hub, "node-b", root / "node-b").start()
    yield a, b
    a.close()
    b.close()
    hub.close()


def test_fan_out_runs_hello_on_another_node_and_gathers_the_results(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    a, b = two_nodes
    runs = Runs(a.client, f"{a.url}/node/v1", a.auth)
    fid = runs.start("fan-out", {"node": "node-b", "count": 3, "name": "n"})
    state = runs.wait(fid, "done", timeout=30)
    assert sorted(state["result"]) == ["Hello, n 1!", "Hello, n 2!", "Hello, n 3!"]
    children = state["children"]
    assert len(children) == 3
    assert {(c["node"], c["flow"], c["state"]) for c in children} == {("node-b", "hello", "done")}
    on_b = Runs(b.client, f"{b.url}/node/v1", b.auth)
    child = on_b.state(children[0]["fid"])
    assert child["parent"] == {"node": "node-a", "fid": fid} and child["state"] == "done"


def test_a_childs_lock_shows_in_the_parent_and_is_answered_through_it(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    a, _ = two_nodes
    parent = Runs(a.client, f"{a.url}/node/v1", a.auth)
    fid = parent.start("nest", {"node": "node-b", "flow": "gate",
                                "inputs": {"release_timeout": 10}})
    lock = parent.lock(fid)
    assert lock["node"] == "node-b" and lock["fid"] != fid
    [child] = parent.state(fid)["children"]
    assert child["state"] == "locked" and child["fid"] == lock["fid"]
    demand = a.client.get(f"{parent.base}/runs/{fid}/lock/{lock['lid']}/candidate").json()
    assert demand["prompt"] == "Give a gain (not positive)" and demand["node"] == "node-b"

    denied = parent.submit(fid, lock["lid"], {"gain_db": 2})
    assert denied.status_code == 422 and denied.json()["reason"] == "positive gain would clip"
    # The same lock, through the hub's proxy of the parent's node, with the operator token.
    hub = a.hub
    via_hub = Runs(hub.client, f"{hub.url}/api/v1/nodes/node-a", hub.auth)
    released = via_hub.submit(fid, lock["lid"], {"gain_db": -4})
    assert released.status_code == 200, released.text
    state = parent.wait(fid, "done", timeout=20)
    assert state["result"] == {"gain_db": -4.0} and state["locks"] == []
    assert state["children"][0]["state"] == "done"
    types = [e["type"] for e in parent.events(fid)]
    assert types.count("child") >= 3  # pending, locked, done at least


def test_a_failing_child_fails_the_parent_and_cancelling_the_parent_cancels_the_child(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    a, b = two_nodes
    parent = Runs(a.client, f"{a.url}/node/v1", a.auth)
    fid = parent.start("nest", {"node": "node-b", "flow": "fail"})
    state = parent.wait(fid, "error", timeout=20)
    assert "ChildFailed" in state["error"]["message"]
    assert "the flow failed on purpose" in state["error"]["message"]

    fid = parent.start("nest", {"node": "node-b", "flow": "sleep", "inputs": {"seconds": 30}})
    wait_until(lambda: parent.state(fid)["children"] and
               parent.state(fid)["children"][0]["state"] == "running", 20, "child running")
    child_fid = parent.state(fid)["children"][0]["fid"]
    assert a.client.post(f"{parent.base}/runs/{fid}/cancel", headers=a.auth).status_code == 200
    on_b = Runs(b.client, f"{b.url}/node/v1", b.auth)
    assert on_b.wait(child_fid, "cancelled")["state"] == "cancelled"
