"""Runs on a real standalone node with real worker processes: launch, follow, locks, errors.

One hub and one node serve the whole module (each test uses its own runs), so the module
costs two process starts, not two per test.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from node_processes import NodeProcess, Runs, alive, kill_workers, wait_gone
from processes import HubProcess


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("hub")).start()
    yield hub
    hub.close()
    kill_workers(hub.data_dir / "node")


@pytest.fixture(scope="module")
def node(hub: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(hub, "node-a", tmp_path_factory.mktemp("node-a")).start()
    yield node
    node.close()


@pytest.fixture
def runs(node: NodeProcess) -> Runs:
    """Straight to the node, with the node's own token."""
    return Runs(node.client, f"{node.url}/node/v1", node.auth)


def test_hello_with_its_inputs_runs_straight_through(runs: Runs) -> None:
    fid = runs.start("hello", {"name": "Ada"})
    state = runs.wait(fid, "done")
    assert state["result"] == "Hello, Ada!" and state["locks"] == [] and state["error"] is None
    types = [e["type"] for e in runs.events(fid)]
    assert types == ["status", "status", "log", "progress", "result", "final"]
    assert "lock" not in types  # complete inputs skip the first lock


def test_hello_without_inputs_starts_locked_demanding_them(runs: Runs, node: NodeProcess) -> None:
    fid = runs.start("hello")
    lock = runs.lock(fid)
    assert lock["initial"] and lock["schema"]["required"] == ["name"]
    demand = node.client.get(f"{runs.base}/runs/{fid}/lock/{lock['lid']}/candidate").json()
    assert demand["prompt"].startswith("Inputs for hello") and demand["schema"] == lock["schema"]
    page = node.client.get(f"{runs.base}/runs/{fid}/lock/{lock['lid']}/candidate",
                           headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert '<form id="lock"' in page.text and 'name="name"' in page.text

    bad = runs.submit(fid, lock["lid"], {"name": 5})
    assert bad.status_code == 422 and "name" in bad.json()["detail"]
    ok = runs.submit(fid, lock["lid"], {"name": "Grace"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["accepted"] == {"name": "Grace"}
    assert runs.wait(fid, "done")["result"] == "Hello, Grace!"
    candidates = [e for e in runs.events(fid) if e["type"] == "candidate"]
    assert [c["data"]["value"] for c in candidates] == [{"name": "Grace"}]  # 5 never got in
    again = runs.submit(fid, lock["lid"], {"name": "Late"})
    assert again.status_code == 409 and "done" in again.json()["detail"]


def test_launch_errors_name_what_was_wrong(runs: Runs, node: NodeProcess) -> None:
    c, base = node.client, runs.base
    r = c.post(f"{base}/runs", json={"flow": "nope"}, headers=node.auth)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    r = c.post(f"{base}/runs", json={"flow": "hello", "inputs": {"nam": "x"}}, headers=node.auth)
    assert r.status_code == 422
    assert ["body", "inputs", "name"] in [e["loc"] for e in r.json()["errors"]]
    r = c.post(f"{base}/runs", content=b"{not json", headers=node.auth)
    assert r.status_code == 422 and "malformed JSON" in r.json()["detail"]
    r = c.post(f"{base}/runs", content=b"x" * (1024 * 1024 + 1), headers=node.auth)
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = c.post(f"{base}/runs", json={"flow": "hello", "extra": 1}, headers=node.auth)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "extra"]
    r = c.post(f"{base}/runs", json={"flow": "hello"}, headers={"Authorization": ""})
    assert r.status_code == 401
    assert c.get(f"{base}/runs/fl_nope").status_code == 404
    assert c.get(f"{base}/runs/fl_nope/events").status_code == 404


def test_lock_verdicts_deny_release_unknown_and_timeouts(runs: Runs, node: NodeProcess) -> None:
    fid = runs.start("gate", {"release_timeout": 5})
    lock = runs.lock(fid)
    denied = runs.submit(fid, lock["lid"], {"gain_db": 3})
    assert denied.status_code == 422 and denied.json()["reason"] == "positive gain would clip"
    invalid = runs.submit(fid, lock["lid"], {"gain_db": 99})
    assert invalid.status_code == 422 and "gain_db" in invalid.json()["detail"]
    unknown = runs.submit(fid, "lk_unknown", {"gain_db": 0})
    assert unknown.status_code == 404
    released = runs.submit(fid, lock["lid"], {"gain_db": -2})
    assert released.status_code == 200 and released.json()["accepted"] == {"gain_db": -2.0}
    assert runs.wait(fid, "done")["result"] == {"gain_db": -2.0}
    types = [e["type"] for e in runs.events(fid)]
    assert types.count("candidate") == 2 and "deny" in types and "release" in types


def test_a_flow_that_ignores_a_candidate_gets_504_after_release_timeout(runs: Runs) -> None:
    fid = runs.start("ignore", {"release_timeout": 0.5})
    lock = runs.lock(fid)
    started = time.monotonic()
    r = runs.submit(fid, lock["lid"], {"anything": True})
    assert r.status_code == 504, r.text
    assert 0.4 < time.monotonic() - started < 5
    assert "release-timeout" in r.json()["detail"]
    assert runs.state(fid)["state"] == "locked"  # still waiting; the flow may yet answer


def test_no_candidate_timeout_errors_the_run_by_default_or_takes_the_default(runs: Runs) -> None:
    fid = runs.start("gate", {"no_candidate_timeout": 0.5})
    state = runs.wait(fid, "error")
    assert "no-candidate-timeout" in state["error"]["message"]
    assert "expire" in [e["type"] for e in runs.events(fid)]
    fid = runs.start("gate", {"no_candidate_timeout": 0.3, "default": -6})
    assert runs.wait(fid, "done")["result"] == {"gain_db": -6.0}


def test_a_crashing_worker_ends_the_run_with_its_exit_code_and_stderr(runs: Runs) -> None:
    fid = runs.start("crash", {"code": 7})
    state = runs.wait(fid, "error")
    assert state["error"]["exit_code"] == 7
    assert "exited with code 7" in state["error"]["message"]
    assert "brought its process down" in state["error"]["stderr"]
    fid = runs.start("fail", {})
    state = runs.wait(fid, "error")
    assert "ValueError: the flow failed on purpose" in state["error"]["message"]
    assert "Traceback" in state["error"]["traceback"]
    # The node and other runs are unaffected.
    assert runs.wait(runs.start("hello", {"name": "still here"}), "done")["result"]


def test_delete_cancels_the_run_and_stops_its_worker(runs: Runs, node: NodeProcess) -> None:
    fid = runs.start("sleep", {"seconds": 30})
    pid = runs.wait(fid, "running")["pid"]
    assert pid and alive(pid)
    r = node.client.post(f"{runs.base}/runs/{fid}/cancel", headers=node.auth)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    wait_gone(pid)
    assert runs.state(fid)["state"] == "cancelled"
    assert node.client.post(f"{runs.base}/runs/{fid}/cancel", headers=node.auth).status_code == 409
    assert runs.events(fid)[-1]["data"]["state"] == "cancelled"


def test_worker_sigkill_marks_the_run_interrupted_with_the_reason(runs: Runs) -> None:
    fid = runs.start("sleep", {"seconds": 30})
    pid = runs.wait(fid, "running")["pid"]
    import os

    os.kill(pid, signal.SIGKILL)
    state = runs.wait(fid, "interrupted")
    assert "killed by SIGKILL" in state["error"]["message"]


def test_every_route_works_through_the_hub_proxy_with_the_operator_token(
    hub: HubProcess, node: NodeProcess
) -> None:
    proxied = Runs(hub.client, f"{hub.url}/api/v1/nodes/{node.name}", hub.auth)
    flows = hub.client.get(f"{proxied.base}/flows").json()
    assert {"hello", "fan-out", "approve-render", "gate"} <= {f["name"] for f in flows}
    fid = proxied.start("hello")
    lock = proxied.lock(fid)
    assert proxied.submit(fid, lock["lid"], {"name": "via hub"}).status_code == 200
    assert proxied.wait(fid, "done")["result"] == "Hello, via hub!"
    assert [e["type"] for e in proxied.events(fid)][-1] == "final"
    no_token = hub.client.post(f"{proxied.base}/runs", json={"flow": "hello"},
                               headers={"Authorization": ""})
    assert no_token.status_code == 401
    node_token = hub.client.post(f"{proxied.base}/runs", json={"flow": "hello",
                                                             "inputs": {"name": "n"}},
                                 headers=node.auth)
    assert node_token.status_code == 201  # a linked node's token acts for the operator
    assert hub.client.get(f"{hub.url}/api/v1/nodes/ghost/flows").status_code == 404


def test_the_node_token_is_not_shown_in_components(hub: HubProcess, node: NodeProcess) -> None:
    r = hub.client.get(f"{hub.url}/api/v1/components")
    assert r.status_code == 200
    text = r.text
    assert node.token not in text
    assert hub.components()[node.name]["config"]["url"] == node.url
