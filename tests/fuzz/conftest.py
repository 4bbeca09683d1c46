"""One hub for the whole fuzz package, with a healthy engine and driver attached.

Session-scoped: starting a hub and two agents costs seconds, and the point of the fuzz is
that one long-lived hub survives everything thrown at it while its healthy agents keep
being checked on time.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from fuzzing import HEALTHY, Fuzz, FuzzHub, free_port
from processes import AgentProcess, HubProcess

from backend.agents.urls import agent_channel_url


@pytest.fixture(scope="session")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzHub]:
    root = tmp_path_factory.mktemp("fuzz")
    hub = HubProcess(root / "hub").start()
    port = free_port()
    config = root / "driver.json"
    config.write_text(json.dumps({"insert_listen": f"127.0.0.1:{port}"}))
    agents = [AgentProcess(hub.url, "engine", "engine-1", root / "engine-1", hub.enroll("engine")),
              AgentProcess(hub.url, "driver", "driver-1", root / "driver-1",
                           hub.enroll("driver"), "--config", str(config))]
    try:
        for name in HEALTHY:
            hub.wait_state(name, "up", timeout=60)
        silent = (socket.create_connection(("127.0.0.1", port), timeout=10), time.monotonic())
        yield FuzzHub(hub, Fuzz(hub.url, agent_channel_url(hub.url), hub.token), port, agents,
                      silent)
        silent[0].close()
    finally:
        for agent in agents:
            agent.stop()
        hub.close()
