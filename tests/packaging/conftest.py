"""The frozen program: one PyInstaller bundle built per test session, and its processes.

The bundle is built from this tree into a temporary directory (about 30 s here), once for
every packaging test. ``CONTROLROOM_TEST_BUNDLE=/path/to/dist/controlroom`` reuses a
bundle built before (``make bundle``), for a quick loop while working on these tests.

The hub and agent fixtures of ``tests/conftest.py`` are overridden here so that every
process these tests start is the frozen console executable, never a Python.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from processes import ROOT, AgentProcess, HubProcess

if not (sys.platform.startswith("linux") and platform.machine() == "x86_64"):
    pytest.skip("the packaging tests build the Linux x86_64 bundle", allow_module_level=True)


def load_package_script() -> ModuleType:
    """``packaging/package.py`` (a script, not an importable package: the name
    ``packaging`` belongs to the PyPI project PyInstaller needs)."""
    spec = importlib.util.spec_from_file_location("controlroom_package",
                                                  ROOT / "packaging" / "package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def package_script() -> ModuleType:
    return load_package_script()


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory, package_script: ModuleType) -> Path:
    """The bundle directory (``.../controlroom`` with both executables)."""
    given = os.environ.get("CONTROLROOM_TEST_BUNDLE")
    if given:
        return Path(given).resolve()
    out = tmp_path_factory.mktemp("bundle")
    started = time.monotonic()
    built: Path = package_script.bundle(out / "dist", out / "work")
    print(f"\nbundle built in {time.monotonic() - started:.0f} s")
    return built


@pytest.fixture(scope="session")
def frozen(bundle: Path) -> tuple[str, ...]:
    """The program as the packaging tests start it: the console executable."""
    return (str(bundle / "controlroom"),)


@pytest.fixture
def start_hub(tmp_path: Path, frozen: tuple[str, ...]) -> Iterator[Callable[..., HubProcess]]:
    hubs: list[HubProcess] = []

    def start(*extra: str, name: str = "hub", port: int = 0) -> HubProcess:
        hub = HubProcess(tmp_path / name, *extra, port=port, program=frozen)
        hubs.append(hub)
        return hub.start()

    yield start
    for hub in hubs:
        hub.close()


@pytest.fixture
def spawn_agent(tmp_path: Path,
                frozen: tuple[str, ...]) -> Iterator[Callable[..., AgentProcess]]:
    agents: list[AgentProcess] = []

    def spawn(hub: HubProcess, name: str, kind: str = "engine", token: str | None = "",
              *extra: str) -> AgentProcess:
        if token == "":
            token = hub.enroll(kind)
        agent = AgentProcess(hub.url, kind, name, tmp_path / "agents" / name, token or None,
                             *extra, program=frozen)
        agents.append(agent)
        return agent

    yield spawn
    for agent in agents:
        agent.stop()
