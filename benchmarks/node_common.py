"""Shared plumbing of the node benchmarks: a real hub and a real ``agent node`` process.

The benchmarks talk to the node directly (``/node/v1`` with the node's own token), not
through the hub's proxy: the figures are the node's, without the hub's hop in the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from harness import HubProcess, Reaper, controlroom, enroll

from backend.client import NodeClient

FLOWS = Path(__file__).resolve().parent / "node_flows.py"


@dataclass(frozen=True)
class NodeProc:
    pid: int
    url: str
    token: str
    data_dir: Path


@contextlib.asynccontextmanager
async def node_client(node: NodeProc, request_timeout_s: float = 60.0,
                      connections: int = 100) -> AsyncIterator[NodeClient]:
    """A :class:`NodeClient` on the node's own ``/node/v1`` routes, with a pool of its own
    of up to ``connections`` connections: the benchmarks talk to the node directly, so
    their figures do not include the hub proxy's extra hop.
    """
    client = NodeClient.direct(node.url, node.token, timeout=request_timeout_s,
                               max_connections=connections)
    try:
        yield client
    finally:
        await client.aclose()


async def start_node(reaper: Reaper, hub: HubProcess, name: str = "bench-node") -> NodeProc:
    async with hub.client(timeout=10) as client:
        token = await enroll(client, "node")
    data_dir = reaper.root / name
    proc = reaper.spawn(controlroom(
        "agent", "node", "--hub", hub.url, "--name", name, "--token", token, "--data-dir",
        str(data_dir), "--port", "0", "--flows", str(FLOWS), "--log-level", "warning"),
        f"{name}.log")
    url_file = data_dir / "node.url"
    deadline = time.monotonic() + 30
    while not (url_file.exists() and (data_dir / "node.token").exists()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the node did not start; see {reaper.root / 'logs'}")
        await asyncio.sleep(0.05)
    return NodeProc(proc.pid, url_file.read_text().strip(),
                    (data_dir / "node.token").read_text().strip(), data_dir)


def kill_workers(node_dir: Path) -> None:
    """The node leaves workers running by design; end the ones this benchmark made."""
    import os
    import signal
    import sqlite3

    db = node_dir / "node.sqlite3"
    if not db.exists():
        return
    with sqlite3.connect(db) as conn:
        for (pid,) in conn.execute("SELECT pid FROM runs WHERE pid IS NOT NULL"):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
