"""A run's event stream resumes exactly: 100 random disconnects, 0 lost, 0 duplicated."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from node_processes import NodeProcess, Runs
from processes import HubProcess


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    hub = HubProcess(tmp_path / "hub").start()
    node = NodeProcess(hub, "node-s", tmp_path / "node-s").start()
    yield node
    node.close()
    hub.close()


def read_some(client: httpx.Client, url: str, last: int, lines: int) -> tuple[list[Any], bool]:
    """Read about ``lines`` lines after ``last``, then drop the connection mid-stream."""
    got: list[dict[str, Any]] = []
    ended = False
    with client.stream("GET", url, headers={"Last-Event-ID": str(last)}) as response:
        assert response.status_code == 200
        record: dict[str, str] = {}
        count = 0
        for line in response.iter_lines():
            count += 1
            if line.startswith("id: "):
                record["id"] = line[4:]
            elif line.startswith("data: "):
                record["data"] = line[6:]
            elif line == "" and "data" in record:
                event = json.loads(record["data"])
                assert int(record["id"]) == event["offset"]
                got.append(event)
                record = {}
            if count >= lines:
                break  # closing the response here cuts the connection mid-record
        else:
            ended = True
    return got, ended


def test_resume_after_100_random_disconnects_loses_none_and_repeats_none(
    node: NodeProcess,
) -> None:
    runs = Runs(node.client, f"{node.url}/node/v1", node.auth)
    fid = runs.start("chatty", {"events": 3000, "every_s": 0.0005})
    url = f"{runs.base}/runs/{fid}/events"
    rng = random.Random(5)
    seen: list[dict[str, Any]] = []
    disconnects = 0
    with httpx.Client(timeout=15, headers=node.auth) as client:
        while True:
            last = seen[-1]["offset"] if seen else 0
            lines = rng.randint(1, 160) if disconnects < 100 else 10**9
            got, ended = read_some(client, url, last, lines)
            seen += got
            if ended:
                break
            disconnects += 1
    assert disconnects >= 100
    offsets = [e["offset"] for e in seen]
    assert offsets == list(range(1, len(seen) + 1))  # 0 lost, 0 duplicated, in order
    assert seen[-1]["type"] == "final" and seen[-1]["data"]["state"] == "done"
    assert seen == runs.events(fid)  # exactly the stored stream
    assert sum(e["type"] == "log" for e in seen) == 3000
