"""A node that starts again finishes what its store says, against a real SQLite store."""

from __future__ import annotations

import time
from pathlib import Path

from backend.node.service import Node, NodeSettings


async def _stored_run(node: Node, fid: str, last: tuple[str, dict[str, object]]) -> None:
    """A run as a killed node leaves it: running, its worker's last event committed, no
    ``final`` yet, and the worker gone (a pid with another start time)."""
    await node.store.execute(
        "INSERT INTO runs (fid, flow, created_at, token_digest, pid, pid_started) "
        "VALUES (?, ?, ?, ?, ?, ?)", (fid, "hello", time.time(), "x", 1, 0.0))
    for kind, data in (("status", {"state": "pending", "flow": "hello", "inputs": {}}),
                       ("status", {"state": "running", "pid": 1}), last):
        await node.events.append(fid, kind, data)


async def test_a_result_committed_before_the_node_died_ends_the_run_done(
        tmp_path: Path) -> None:
    """Found by the chaos suite: the node committed and acknowledged a worker's result,
    was SIGKILLed before committing the ``final`` it implies, the worker exited content,
    and the node's next process called the run interrupted ("worker is gone")."""
    node = Node(NodeSettings(tmp_path, entry_points=False))
    await node.startup()
    await _stored_run(node, "fl_result", ("result", {"value": "hi"}))
    await _stored_run(node, "fl_error", ("error", {"message": "the flow failed"}))
    await node.shutdown()

    again = Node(NodeSettings(tmp_path, entry_points=False))
    await again.startup()
    try:
        done = again.runs.runs["fl_result"].state
        assert (done.final, done.result) == ("done", "hi")
        failed = again.runs.runs["fl_error"].state
        assert (failed.final, failed.reason) == ("error", "the flow failed")
        kinds = [e.type for e in await again.events.all("fl_result")]
        assert kinds == ["status", "status", "result", "final"]
    finally:
        await again.shutdown()
