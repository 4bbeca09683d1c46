"""How the program starts itself, from the sources and frozen (without building a bundle:
``sys.frozen`` and ``sys.executable`` are what PyInstaller's bootloader sets)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backend import program
from backend.runner import launch, service_files


def test_from_the_sources_every_process_is_python_dash_m() -> None:
    assert program.command("backend.node.worker") == [sys.executable, "-m",
                                                      "backend.node.worker"]
    assert program.command("app.main", "agent", "engine")[:3] == [sys.executable, "-m",
                                                                  "app.main"]
    # the shim stays a bare script under python -S: it starts in milliseconds
    assert launch.shim_command(Path("/j")) == [sys.executable, "-S", str(launch.SHIM), "/j"]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As inside a bundle whose windowed executable is running."""
    bundle = tmp_path / "controlroom"
    bundle.mkdir()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "ControlRoom"))
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle / "_internal"), raising=False)
    return bundle


def test_frozen_every_process_is_the_console_executable(frozen: Path) -> None:
    console = str(frozen / "controlroom")
    assert program.console_executable() == console
    # the program itself reads as a user would type it: that is what ps and a unit show
    assert program.command("app.main", "agent", "engine") == [console, "agent", "engine"]
    assert program.command("backend.node.worker") == [console, "-m", "backend.node.worker"]
    assert launch.shim_command(Path("/j")) == [console, "-m", "backend.runner.shim", "/j"]
    render = launch.argv_for({"kind": "render", "payload": {}}, Path("/j"))[0]
    assert render == [console, "-m", "backend.runner.render_job", "/j"]
    assert service_files.runner_argv(Path("/d")) == [console, "runner", "run",
                                                     "--data-dir", "/d"]
    assert program.resource("specs/demo.json") == frozen / "_internal" / "resources" / \
        "specs" / "demo.json"


def test_only_the_programs_own_modules_can_be_started() -> None:
    with pytest.raises(ValueError, match="not one of the program's entry points"):
        program.command("http.server")


def test_every_internal_module_exists_and_runs_as_main() -> None:
    for module in program.INTERNAL:
        path = Path(program.root(), *module.split(".")).with_suffix(".py")
        assert 'if __name__ == "__main__":' in path.read_text(), module
