"""Shared parts of the runner benchmarks: a hub on a fixed port, runners, job submission.

The hub keeps one port across restarts (the runners were given its URL), and each runner
is a real ``controlroom agent runner`` process with the timings a benchmark asks for.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Sequence
from typing import Any

from harness import HubProcess, Reaper, controlroom, enroll, start_hub

from backend.client import HubClient, HubUnreachable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def hub_on(reaper: Reaper, port: int, extra: Sequence[str] = ()) -> HubProcess:
    (reaper.root / "hub" / "hub.url").unlink(missing_ok=True)
    return await start_hub(reaper, ["--port", str(port), *extra])


async def start_runner(reaper: Reaper, client: HubClient, hub: HubProcess, name: str,
                       config: dict[str, Any], labels: str = "") -> None:
    data = reaper.root / "runners" / name
    data.mkdir(parents=True, exist_ok=True)
    (data / "config.json").write_text(json.dumps(config))
    args = ["agent", "runner", "--hub", hub.url, "--name", name, "--data-dir", str(data),
            "--token", await enroll(client, "runner"), "--config",
            str(data / "config.json")]
    if labels:
        args += ["--labels", labels]
    reaper.spawn(controlroom(*args), f"{name}.log")


async def wait_ready(client: HubClient, names: Sequence[str], within_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            ready = {v["id"] for v in await client.runners()
                     if v["phase"] == "ready" and v["connected"]}
            if set(names) <= ready:
                return
        except HubUnreachable:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"runners {names} not ready within {within_s:g} s")
        await asyncio.sleep(0.05)


async def submit(client: HubClient, argv: list[str], needs: dict[str, Any] | None = None,
                 retry_s: float = 60) -> str:
    """POST /api/v1/jobs, retried while the hub is away (it may be restarting)."""
    request = {"kind": "command", "needs": needs or {"cpus": 0}, "payload": {"argv": argv}}
    deadline = asyncio.get_running_loop().time() + retry_s
    while True:
        try:
            return str((await client.submit_job(request))["id"])
        except HubUnreachable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
