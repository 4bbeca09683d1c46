"""Shared fixtures: real hub and agent processes (helpers in ``tests/processes.py``)."""

from __future__ import annotations

import faulthandler
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from node_processes import kill_workers
from processes import SOURCE, AgentProcess, HubProcess


@pytest.fixture
def program() -> tuple[str, ...]:
    """How the hubs and agents below are started: from the sources (``tests/packaging``
    overrides it with the frozen console executable)."""
    return SOURCE


@pytest.fixture
def start_hub(tmp_path: Path, program: tuple[str, ...]) -> Iterator[Callable[..., HubProcess]]:
    hubs: list[HubProcess] = []

    def start(*extra: str, name: str = "hub", port: int = 0) -> HubProcess:
        hub = HubProcess(tmp_path / name, *extra, port=port, program=program)
        hubs.append(hub)  # before start, so a failed start is still stopped
        return hub.start()

    yield start
    for hub in hubs:
        hub.close()
        kill_workers(hub.data_dir / "node")  # runs of its node outlive it, by design


@pytest.fixture
def hub(start_hub: Callable[..., HubProcess]) -> HubProcess:
    return start_hub()


@pytest.fixture
def spawn_agent(tmp_path: Path,
                program: tuple[str, ...]) -> Iterator[Callable[..., AgentProcess]]:
    agents: list[AgentProcess] = []

    def spawn(hub: HubProcess | str, name: str, kind: str = "engine", token: str | None = "",
              *extra: str) -> AgentProcess:
        url = hub if isinstance(hub, str) else hub.url
        if token == "" and isinstance(hub, HubProcess):
            token = hub.enroll(kind)
        agent = AgentProcess(url, kind, name, tmp_path / "agents" / name, token or None, *extra,
                             program=program)
        agents.append(agent)
        return agent

    yield spawn
    for agent in agents:
        agent.close()


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """A crash prints the crashing thread only: with every thread listed, CI's log kept the
    idle workers and cut the one stack that mattered."""
    from _pytest.faulthandler import fault_handler_stderr_fd_key

    if fault_handler_stderr_fd_key in config.stash:
        faulthandler.enable(file=config.stash[fault_handler_stderr_fd_key], all_threads=False)
