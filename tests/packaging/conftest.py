"""The frozen program: one PyInstaller bundle built per test session, and its processes.

The bundle is built from this tree into a temporary directory (about 30 s here), once for
every packaging test. ``CONTROLROOM_TEST_BUNDLE=/path/to/dist/controlroom`` reuses a
bundle built before (``make bundle``), for a quick loop while working on these tests.

The ``program`` fixture of ``tests/conftest.py`` is overridden here, so that every hub and
agent its fixtures start is the frozen console executable, never a Python.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from processes import ROOT

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


@pytest.fixture
def program(bundle: Path) -> tuple[str, ...]:
    """Every hub and agent these tests start is the bundle's console executable."""
    return (str(bundle / "controlroom"),)
